"""Model-name resolution and checkpoint loading errors."""
import pytest
from transformers import AutoModel

from dontstop.fileio import UserError
from dontstop.models import bundled_model_dir, load_pretrained, model_sequence_limit, resolve_model, sequence_limit


def test_names_resolve_to_bundled_dirs_local_paths_or_hub_ids(tmp_path):
    assert (bundled_model_dir("bert-tiny") / "config.json").is_file()
    assert resolve_model("bundled:bert-tiny") == str(bundled_model_dir("bert-tiny"))
    assert resolve_model("roberta-base") == "roberta-base"
    assert resolve_model("allenai/cs_roberta_base") == "allenai/cs_roberta_base"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("name, message", [
    ("./no/such/model", "model path does not exist"),
    ("/abs/missing", "model path does not exist"),
    ("bundled:gpt-17", "unknown bundled model"),
])
def test_bad_names_are_one_line_errors(name, message):
    with pytest.raises(UserError, match=message):
        resolve_model(name)


def test_a_folder_without_config_and_a_truncated_checkpoint(tmp_path):
    with pytest.raises(UserError, match="not a model directory"):
        resolve_model(str(tmp_path))
    source = bundled_model_dir("bert-tiny")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    (tmp_path / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes()[:50_000])
    with pytest.raises(UserError, match=f"{tmp_path}: cannot load checkpoint, corrupt or truncated"):
        load_pretrained(AutoModel, str(tmp_path))


def test_the_tokens_a_sequence_can_hold_follow_the_models_positions():
    """roberta-base: 514 position embeddings, 512 tokens (positions start after the padding id);
    BERT: all of them; DeBERTa-v3's relative positions: no limit; a LoRA checkpoint: its base's."""
    from transformers import BertConfig, DebertaV2Config, RobertaConfig, XLMRobertaConfig

    assert sequence_limit(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert sequence_limit(XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert sequence_limit(BertConfig(max_position_embeddings=512)) == 512
    assert sequence_limit(DebertaV2Config(relative_attention=True, position_biased_input=False)) is None
    assert model_sequence_limit("bundled:bert-tiny") == 512


def test_the_offline_message_quotes_the_setting_as_given(monkeypatch):
    """`HF_HUB_OFFLINE=yes` was quoted back as HF_HUB_OFFLINE=1."""
    from dontstop.models import _offline_message

    monkeypatch.setenv("HF_HUB_OFFLINE", "yes")
    assert "roberta-base: not in the local cache and offline (HF_HUB_OFFLINE=yes, cache " in _offline_message("roberta-base")
