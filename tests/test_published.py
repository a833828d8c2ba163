"""Starting from the authors' released checkpoints (--from-released), and whether a rerun agrees
with the paper: the plan, the hub loading offline, the verdict per cell."""
import dataclasses
import re

import numpy as np
import pytest
from huggingface_hub import constants

from dontstop.conditions import EXPERIMENTS_DIR, load_condition
from dontstop.overrides import Override, folder
from dontstop.suites import load_suite
from dontstop.fileio import UserError
from dontstop.report.agreement import verdict
from dontstop.runner.plan import plan_runs
from dontstop.tasks import RELEASED_BASE_IDS
from conftest import pretrain_record
from paper_world import MISSING_HUB_IDS, add_repo, build_paper_world, repo_files


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_paper_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def paper_suite(world, tmp_path):
    """The paper suite over the world's task files and domain corpora, with --from-released."""
    data = tmp_path / "data"
    (data / "paper").mkdir(parents=True)
    (data / "paper" / "tasks").symlink_to(world.s3_root)
    given = [*folder("--data-dir", "data_dir", str(data)), *folder("--cache-dir", "cache_dir", str(tmp_path / "cache")),
             *folder("--results-dir", "results_dir", str(tmp_path / "results")),
             Override(("from_released",), True, "--from-released"),
             *(Override(("domain_corpora", d), str(p), f"--domain-corpus {d}={p}") for d, p in world.corpora.items()),
             Override(("curated", "hyperpartisan_news"), str(world.corpora["news"]), "--curated-corpus"),
             Override(("curated", "imdb"), str(world.corpora["reviews"]), "--curated-corpus")]
    return load_suite("paper", overrides=given)


def plan(suite, condition, task):
    [found] = plan_runs(suite, load_condition(EXPERIMENTS_DIR / condition), [task])
    return found


@pytest.mark.parametrize("condition, task, hub_id, lineage", [
    ("tapt", "chemprot", "allenai/dsp_roberta_base_tapt_chemprot_4169", "tapt-chemprot"),
    ("dapt_tapt", "chemprot", "allenai/dsp_roberta_base_dapt_biomed_tapt_chemprot_4169", "dapt-biomed+tapt-chemprot"),
    ("dapt", "citation_intent", "allenai/cs_roberta_base", "dapt-cs"),
    ("not_dapt", "chemprot", "allenai/reviews_roberta_base", "dapt-reviews"),    # biomed's irrelevant domain
    ("curated_tapt", "imdb", "allenai/dsp_roberta_base_tapt_imdb_70000", "curated-imdb"),
    ("dapt_curated_tapt", "rct-sample", "allenai/dsp_roberta_base_dapt_biomed_tapt_rct_180K",
     "dapt-biomed+curated-rct-sample"),
    ("transfer_tapt", "chemprot", "allenai/dsp_roberta_base_tapt_rct_180K", "tapt-rct-20k"),
])
def test_released_checkpoints_replace_the_stages(paper_suite, condition, task, hub_id, lineage):
    found = plan(paper_suite, condition, task)
    assert [s.released for s in found.stages] == [hub_id]
    assert found.model == hub_id and found.from_released and found.lineage == lineage


def test_conditions_without_a_release_build_on_the_released_dapt(paper_suite):
    knn = plan(paper_suite, "knn_tapt_50", "chemprot")
    assert [s.released for s in knn.stages] == [None] and knn.stages[0].parent == "roberta-base"
    assert not knn.from_released
    # --from-released-dapt alone keeps building TAPT, on the released DAPT
    dapt_only = dataclasses.replace(load_suite("paper"), data_dir=paper_suite.data_dir,
                                    cache_dir=paper_suite.cache_dir, from_released_dapt=True)
    dapt_tapt = plan(dapt_only, "dapt_tapt", "chemprot")
    assert [s.released for s in dapt_tapt.stages] == ["allenai/biomed_roberta_base", None]
    assert dapt_tapt.stages[1].parent == "allenai/biomed_roberta_base"


def test_the_analysis_scores_dapt_lora_beside_the_released_dapt_models(paper_suite):
    """DAPT (LoRA) is never released: with the released DAPT models it is built here (for the
    analysis too), yet the MLM-loss analysis left it out of Table 1 and Table 12."""
    from dontstop.analysis.domains import suite_models
    from dontstop.stage_identity import domain_checkpoints

    ours = domain_checkpoints(paper_suite)
    assert not any(name.startswith("dapt-") for name in ours)            # the released ones stand for DAPT
    pretrain_record(steps=3).write(ours["dapt_lora-biomed"])             # dapt_lora-cs: not built
    released = {f"dapt-{d}": f"allenai/{d}_roberta_base" for d in ("biomed", "cs", "news", "reviews")}
    assert suite_models(paper_suite) == {"base": "roberta-base", **released,
                                         "dapt_lora-biomed": str(ours["dapt_lora-biomed"])}
    assert suite_models(paper_suite, scored={"dapt-biomed"}) == {"base": "roberta-base", **released}


@pytest.mark.parametrize("key", ["from_released", "from_released_dapt"])
def test_released_checkpoints_on_a_study_of_another_base_model_are_refused(key, tmp_path):
    """A study extending paper with `base_model: roberta-large` (or a base stage) and
    --from-released: its TAPT and DAPT rows were the authors' roberta-base models, its baseline,
    kNN and LoRA rows its own model, side by side in one table, without a word."""
    from dontstop.suites import load_suite

    flag = Override((key,), True, "--" + key.replace("_", "-"))
    for line, base in (("base_model: roberta-large", "'roberta-large'"),
                       (f"base_model: {tmp_path / 'tiny'}", repr(str(tmp_path / "tiny")))):
        (tmp_path / "tiny").mkdir(exist_ok=True)
        (tmp_path / "tiny" / "config.json").write_text('{"model_type": "roberta", "hidden_size": 64, '
                                                       '"num_hidden_layers": 2, "vocab_size": 50265}')
        study = tmp_path / "study.yaml"
        study.write_text(f"name: large\nextends: paper\n{line}\n")
        with pytest.raises(UserError, match=re.escape(
                f"study.yaml:3: key 'base_model': {base}, but the authors' released checkpoints ({key}) were "
                f"pretrained from roberta-base: their rows would stand beside this model's baseline; leave {key} "
                "out, or give base_model roberta-base")):
            load_suite(str(study), overrides=[flag])
        assert load_suite(str(study)).base_model   # without the flag: its own model throughout
    (tmp_path / "tiny" / "config.json").write_text('{"model_type": "roberta", "hidden_size": 768, '
                                                   '"num_hidden_layers": 12, "vocab_size": 50265}')
    assert getattr(load_suite(str(study), overrides=[flag]), key)            # a local copy of roberta-base
    for base in RELEASED_BASE_IDS:
        assert getattr(load_suite("paper", overrides=[flag, Override(("base_model",), base, "--set")]), key)
    study.write_text("name: based\nextends: paper\nbase_corpus: general.txt\n")
    (tmp_path / "general.txt").write_text("general text\n")
    with pytest.raises(UserError, match=re.escape("study.yaml:3: key 'base_corpus': the suite's RoBERTa is a base "
                                                  "stage built on")):
        load_suite(str(study), overrides=[flag])


def test_a_released_id_the_hub_never_showed_is_built_on_the_released_dapt_unless_the_cache_has_it(
        world, paper_suite, monkeypatch, tmp_path):
    """The authors' README lists two DAPT + TAPT models no hub page ever showed: --from-released
    stopped at the first of them, so its one command never ran. Now those two cells are built,
    TAPT on the released DAPT model; a copy in the local cache is used as any released one."""
    world.apply(monkeypatch)
    for task, hub_id, dapt in (("sciie", MISSING_HUB_IDS[0], "allenai/cs_roberta_base"),
                               ("hyperpartisan_news", MISSING_HUB_IDS[1], "allenai/news_roberta_base")):
        built = plan(paper_suite, "dapt_tapt", task)
        assert [s.released for s in built.stages] == [dapt, None] and built.stages[1].parent == dapt
        assert not built.from_released and built.lineage == f"{built.stages[0].lineage}+tapt-{task}"
    cache = tmp_path / "hub"   # a cache that has one of them
    add_repo(cache, MISSING_HUB_IDS[1], repo_files(MISSING_HUB_IDS[1], world.model_dir))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    found = plan(paper_suite, "dapt_tapt", "hyperpartisan_news")
    assert [s.released for s in found.stages] == [MISSING_HUB_IDS[1]] and found.from_released
    assert plan(paper_suite, "dapt_tapt", "sciie").stages[1].released is None


def test_a_released_id_missing_offline_is_one_line_naming_it(world, monkeypatch):
    from transformers import AutoModelForMaskedLM

    from dontstop.models import check_available, load_pretrained

    world.apply(monkeypatch)
    check_available("allenai/dsp_roberta_base_tapt_chemprot_4169")   # in the cache: fine
    for hub_id in MISSING_HUB_IDS:
        with pytest.raises(UserError, match=f"{hub_id}: not in the local cache and offline"):
            check_available(hub_id)
        with pytest.raises(UserError, match=f"{hub_id}: not in the local cache and offline"):
            load_pretrained(AutoModelForMaskedLM, hub_id)


def test_verdicts_against_the_published_cell():
    assert verdict(85.5, np.sqrt(0.5), 2, 84.2, 0.2)[1] == "agrees"      # p = 0.23
    p, said = verdict(90.0, 0.1, 5, 84.2, 0.2)
    assert said == "differs (+)" and p < 1e-6
    assert verdict(80.0, 0.5, 5, 84.2, 0.2)[1] == "differs (−)"
    assert verdict(80.0, np.nan, 1, 84.2, 0.2)[1] == "too few seeds"
    assert verdict(np.nan, np.nan, 0, 84.2, 0.2)[1] == ""
    # a printed std of 0.0 is read as at most 0.05, not as an exact value
    assert verdict(87.25, 0.05, 5, 87.2, 0.0)[1] == "agrees"
