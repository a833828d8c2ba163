"""The offline mini benchmark: built once per session from the packaged text (~10 s)."""
import json
import shutil
from pathlib import Path

import pytest

from dontstop.data.formats import load_split, text_key
from dontstop.data.task_checks import check_task
from dontstop.fileio import UserError, sha256_file
from dontstop.data.mini import HeldOut, build_mini, check_no_leakage
from dontstop.data.mini_readme import write_data_readme
from dontstop.tasks import MINI_DOMAINS, MINI_TASKS, SPLITS

EXPECTED_LABELS = {
    "aclsum-roles": {"approach", "challenge", "none", "outcome"},
    "aclsum-sections": {"experiments", "method", "related-work", "results"},
    "rt-polarity": {"fresh", "rotten"},
    "rt-subjectivity": {"plot", "review"},
    "bbc-topic": {"business", "entertainment", "politics", "sports", "tech"},
}


@pytest.fixture(scope="session")
def built(mini_build):
    return mini_build


def read_lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_same_seed_same_bytes(built, tmp_path):
    _, manifest = built
    assert build_mini(tmp_path, seed=0, progress=False) == manifest


def test_a_folder_or_readme_build_mini_did_not_write_is_refused_before_the_build(tmp_path, capsys):
    """A user's own corpora in <data-dir>/mini/, or notes given as --readme, were written over (exit
    0); the README's default is now beside the build (data/README.md described a build elsewhere).
    A build interrupted before its manifest is resumed."""
    from dontstop.cli import main
    from dontstop.data.mini import BUILDING, _check_previous_build

    own = tmp_path / "data" / "mini" / "corpora" / "cs.txt"
    own.parent.mkdir(parents=True)
    own.write_text("my own corpus\n")
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    assert main(["data", "build-mini", "--data-dir", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.strip() == (f"dontstop: error: {tmp_path}/data/mini: holds files that no "
                                               "build-mini wrote (no manifest.json), which it would write over; "
                                               "give another --data-dir, or empty the folder")
    assert main(["data", "build-mini", "--data-dir", str(tmp_path / "other"), "--readme", str(notes)]) == 2
    assert "a file build-mini did not write, which it would replace" in capsys.readouterr().err
    assert own.read_text() == "my own corpus\n" and notes.read_text() == "# my notes\n"
    (own.parent.parent / BUILDING).touch()   # a build of ours, interrupted: resumed
    _check_previous_build(own.parent.parent, seed=0)


def test_the_runner_builds_again_a_benchmark_an_older_builder_wrote(built, tmp_path, capsys):
    """data/mini is built when missing, and was never again: after a pull that changed what the
    builder writes (2026-12-06: corpora and pools by the new text key), every run from those
    corpora was refused as stale against the committed results. A manifest of an older build (it
    names its sources, and no builder) is built again, with its seed; a stand-in without sources is
    taken as it is."""
    import dataclasses

    from dontstop.runner.mini_data import ensure_mini_data
    from dontstop.suites import load_suite

    _, manifest = built
    suite = dataclasses.replace(load_suite("mini"), data_dir=str(tmp_path / "data"))
    (tmp_path / "data" / "mini").mkdir(parents=True)
    older = {key: value for key, value in manifest.items() if key != "builder"}
    (tmp_path / "data" / "mini" / "manifest.json").write_text(json.dumps(older))
    ensure_mini_data(suite, dry_run=True)
    assert capsys.readouterr().out.startswith(
        "mini benchmark data written by an older dontstop (builder 1, now 2: other corpus and pool files) in "
        f"{tmp_path / 'data' / 'mini'}: the run builds it first")
    ensure_mini_data(suite)
    assert capsys.readouterr().out.startswith("mini benchmark data written by an older dontstop (builder 1, now 2: "
                                              "other corpus and pool files): building it")
    assert json.loads((tmp_path / "data" / "mini" / "manifest.json").read_text()) == manifest
    ensure_mini_data(suite)   # as this version builds it
    (tmp_path / "data" / "mini" / "manifest.json").write_text("{}")   # a stand-in
    ensure_mini_data(suite, dry_run=True)
    assert capsys.readouterr().out == ""


def test_rebuilding_with_another_seed_is_refused(built):
    data_dir, _ = built
    with pytest.raises(UserError, match="built with seed 0"):
        build_mini(data_dir, seed=1, progress=False)


def test_manifest_describes_exactly_the_files_on_disk(built):
    data_dir, manifest = built
    root = data_dir / "mini"
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(manifest["files"]) | {"manifest.json"}
    for relpath, entry in manifest["files"].items():
        path = root / relpath
        assert entry["sha256"] == sha256_file(path)
        assert entry["bytes"] == path.stat().st_size
        assert entry["lines"] == len(read_lines(path))
    assert json.loads((root / "manifest.json").read_text()) == manifest


def test_every_task_passes_check_task_with_the_expected_labels(built):
    data_dir, manifest = built
    assert set(MINI_TASKS) == set(EXPECTED_LABELS)
    # One sentence two ACL papers share (D14-1082, P16-1218) is in ACL-Sections' dev and test: the
    # source data's, kept (a warning, as `dontstop data check` says it); nothing else is said.
    shared = ("aclsum-sections", "test.jsonl", 178, "also appears in dev.jsonl (leakage)")
    for key, task in MINI_TASKS.items():
        problems = check_task(data_dir / "mini" / "tasks" / key, task)
        assert [(key, Path(p.path).name, p.line, p.message) for p in problems] == ([shared] if key == shared[0] else [])
        assert all(p.severity == "warning" for p in problems)
        counts = manifest["counts"]["tasks"][key]
        for split in SPLITS:
            assert set(counts[split]) == EXPECTED_LABELS[key], (key, split)
        assert sum(counts["train"].values()) == 500


def test_roles_is_low_resource_with_few_nones_and_a_curated_pool(built):
    data_dir, manifest = built
    for split, counts in manifest["counts"]["tasks"]["aclsum-roles"].items():
        roles = counts["approach"] + counts["challenge"] + counts["outcome"]
        # every split is a random sample (500 / 300 / 500) of a pool with as many nones as roles
        assert counts["none"] <= 1.25 * roles, split
    root = data_dir / "mini"
    train = {text_key(e.text) for e in load_split(root / "tasks/aclsum-roles/train.jsonl")}
    curated = {text_key(line) for line in read_lines(root / "curated/aclsum-roles.txt")}
    assert len(curated) > 2000 and not curated & train


def test_no_held_out_text_anywhere_it_could_be_trained_on(built):
    data_dir, _ = built
    assert check_no_leakage(data_dir) == []


def test_sections_share_no_text_with_roles_dev_or_test(built):
    root = built[0] / "mini" / "tasks"
    roles = HeldOut()
    for split in ("dev", "test"):
        for example in load_split(root / "aclsum-roles" / f"{split}.jsonl"):
            roles.add(example.text, split)
    sections = [e for split in SPLITS for e in load_split(root / "aclsum-sections" / f"{split}.jsonl")]
    assert [e.text for e in sections if not roles.allows(e.text)] == []


def test_a_planted_leak_is_found_even_retokenized(built, tmp_path):
    root = built[0] / "mini"
    copy = tmp_path / "mini"
    shutil.copytree(root / "tasks", copy / "tasks")
    shutil.copytree(root / "corpora", copy / "corpora")
    dev = load_split(root / "tasks/aclsum-roles/dev.jsonl")
    sentence = next(e.text for e in dev if len(e.text.split()) > 15)
    detokenized = sentence.replace(" ,", ",").replace(" .", ".").replace("( ", "(").replace(" )", ")")
    with open(copy / "corpora/cs.txt", "a", encoding="utf-8") as f:
        f.write(sentence + "\n")
    (copy / "curated").mkdir()
    (copy / "curated/aclsum-roles.txt").write_text(f"Some context first. {detokenized} And after.\n")
    violations = check_no_leakage(tmp_path)
    assert len(violations) == 2
    assert violations[0].startswith("curated/aclsum-roles.txt: document 1 overlaps tasks/aclsum-roles/dev.jsonl:")
    assert violations[1].startswith("corpora/cs.txt: document ")


def test_corpora_and_pools_are_one_unique_document_a_line(built):
    data_dir, manifest = built
    root = data_dir / "mini"
    for relpath in manifest["files"]:
        if relpath.startswith(("corpora/", "curated/", "pools/")):
            lines = read_lines(root / relpath)
            texts = [json.loads(line)["text"] for line in lines] if relpath.endswith(".jsonl") else lines
            assert all(t.strip() == t and t for t in texts), relpath
            assert len({text_key(t) for t in texts}) == len(texts), relpath
    for domain in MINI_DOMAINS:
        words = manifest["files"][f"corpora/{domain}.txt"]["words"]
        assert 100_000 < words < 1_500_000, domain
        sources = manifest["counts"]["pools"][domain]
        assert sources[domain] == sources["general"] == manifest["files"][f"corpora/{domain}.txt"]["lines"]


def test_data_readme_lists_every_file_and_task(built, tmp_path):
    _, manifest = built
    readme = tmp_path / "README.md"
    write_data_readme(manifest, readme)
    text = readme.read_text()
    for relpath, entry in manifest["files"].items():
        assert f"| mini/{relpath} | {entry['lines']:,d} |" in text
    assert "| rt-subjectivity | reviews | plot | 250 | 150 | 250 |" in text
    assert "| bbc-topic | news | (all) | 500 | 300 | 500 |" in text
