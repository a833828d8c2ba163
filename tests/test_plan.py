"""Condition and suite configs, and how conditions resolve into shared pretraining stages.

The tests loop over what ships (every experiments/*/config.yaml), never over a hand list, and a
copied condition folder passes them as it is (`test_a_copied_condition_folder_passes_the_same_checks`).
"""
import dataclasses
import json
import random
import re
import shutil

import pytest

from conftest import metrics_record, pretrain_record, probe_record
from dontstop.condition_readme import README, render_readme, write_readmes
from dontstop.conditions import EXPERIMENTS_DIR, load_condition, load_conditions, select_conditions
from dontstop.fileio import UserError
from dontstop.recipes import AdapterRecipe
from dontstop.records import METRICS_FILE
from dontstop.report.render import to_markdown
from dontstop.report.runs import load_runs
from dontstop.report.write import build_tables, make_layout, shown_conditions
from dontstop.runner.plan import plan_runs, unique_stages
from dontstop.stage_identity import built_lineage
from dontstop.suites import load_suite, with_quick
from dontstop.tasks import MINI_TASKS

SHIPPED = sorted(path.parent.name for path in EXPERIMENTS_DIR.glob("*/config.yaml"))


def plans_by(suite, condition):
    return {p.task.key: p for p in plan_runs(suite, load_condition(EXPERIMENTS_DIR / condition))}


def check_plans(key, experiments_dir, suite):
    """What every condition folder must do first: load, and plan on the tasks it applies to, each
    plan's stages its chain after the suite's base stage."""
    conditions = load_conditions(experiments_dir)
    condition = conditions.get(key)
    assert condition.condition == key and condition.display
    plans = plan_runs(suite, condition)
    assert {plan.task.key for plan in plans} == {t for t in suite.tasks if condition.applies(suite.task(t), suite)}
    assert plans, f"{key}: applies to no task of the mini suite"
    for plan in plans:
        assert [stage.kind for stage in plan.stages][:1] == ["base"] and len(plan.stages) == 1 + len(condition.stages)
        assert plan.lineage == built_lineage(suite, plan.task, condition.stages)   # what aggregate checks runs by
    return conditions


def tables_with_runs(conditions, suite, results) -> str:
    """Three runs of every (task, condition) that applies, then every table as aggregate builds it
    (plots aside), as one Markdown text."""
    for condition in conditions:
        for task in (t for t in suite.tasks if condition.applies(suite.task(t), suite)):
            for seed in (0, 1, 2):
                score = random.Random(f"{task} {condition.condition} {seed}").uniform(0.3, 0.7)
                lineage = built_lineage(suite, suite.task(task), condition.stages)   # what aggregate checks
                metrics_record(task=task, condition=condition.condition, seed=seed, test_metric=score,
                               lineage=lineage).write(results / suite.name / task / condition.condition / f"seed_{seed}")
    runs = load_runs(results, suite, conditions)
    tables = build_tables(runs, make_layout(suite, shown_conditions(conditions, runs)), overlap=None)
    return "\n".join(to_markdown(grid, title) for name, (title, _, grid) in tables.items() if name.startswith("table"))


@pytest.fixture(scope="module")
def shipped_tables(tmp_path_factory):
    return tables_with_runs(load_conditions(), load_suite("mini"), tmp_path_factory.mktemp("results"))


@pytest.mark.parametrize("key", SHIPPED)
def test_every_shipped_condition_loads_and_plans(key, mini_suite):
    check_plans(key, EXPERIMENTS_DIR, mini_suite)


@pytest.mark.parametrize("key", SHIPPED)
def test_every_shipped_condition_appears_in_a_table(key, shipped_tables):
    display = load_conditions().get(key).display
    assert f"| {display} |" in shipped_tables, f"{key}: in no table (a column of a header, or a row)"


def test_a_copied_condition_folder_passes_the_same_checks(mini_suite, tmp_path):
    """README: "copy a folder, rename it and edit its config": the copy needs its key (= the
    folder's name) and nothing else, and no test names it."""
    experiments = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR, experiments, ignore=shutil.ignore_patterns("suites"))
    shutil.copytree(experiments / "dapt_tapt", experiments / "my_dapt_tapt")
    config = experiments / "my_dapt_tapt" / "config.yaml"
    config.write_text(config.read_text().replace("condition: dapt_tapt", "condition: my_dapt_tapt")
                      .replace('display: "DAPT + TAPT"', 'display: "My DAPT + TAPT"'))
    conditions = check_plans("my_dapt_tapt", experiments, mini_suite)
    assert "| My DAPT + TAPT |" in tables_with_runs(conditions, load_suite("mini"), tmp_path / "results")
    assert "my_dapt_tapt" in [c.condition for c in select_conditions(conditions, None)]
    assert write_readmes(experiments) == [experiments / "my_dapt_tapt" / README]   # its README, rendered
    assert write_readmes(experiments, check=True) == []
    mine = experiments / "my_dapt_tapt" / README   # one's own notes there were written over, exit 0
    mine.write_text("My notes on this condition\n")
    with pytest.raises(UserError, match=re.escape(f"{mine}: a README `dontstop readmes` did not write (its title "
                                                  "is not '# My DAPT + TAPT (`my_dapt_tapt`)'), which it would "
                                                  "replace; move it aside (notes of your own go under a '## Notes' "
                                                  "heading at its end, which it keeps)")):
        write_readmes(experiments)
    assert mine.read_text() == "My notes on this condition\n"
    assert write_readmes(experiments, check=True) == [mine]
    # notes under a `## Notes` heading stay below each new rendering (they were written over)
    mine.unlink()
    write_readmes(experiments)
    notes = "## Notes\n\nThe W&B group of its first runs: my-dapt-tapt-1.\n"
    mine.write_text(mine.read_text() + "\n" + notes)
    assert write_readmes(experiments, check=True) == []
    config.write_text(config.read_text().replace('display: "My DAPT + TAPT"', 'display: "Mine"'))
    assert write_readmes(experiments) == [mine]
    assert mine.read_text().startswith("# Mine (`my_dapt_tapt`)\n") and mine.read_text().endswith("\n\n" + notes)


def test_the_default_run_is_every_condition_whose_folder_says_default():
    conditions = load_conditions()
    assert [c.condition for c in select_conditions(conditions, None)] == [c.condition for c in conditions if c.default]
    assert any(not c.default for c in conditions)   # the LoRA rows run only when named (--conditions)
    first, last = list(conditions)[-1].condition, list(conditions)[0].condition
    assert [c.condition for c in select_conditions(conditions, [first, last, first])] == [first, last]
    orders = [(c.order, c.condition) for c in conditions]
    assert orders == sorted(orders) and conditions.baseline == list(conditions)[0].condition


@pytest.mark.parametrize("key", SHIPPED)
def test_every_shipped_condition_readme_is_its_rendered_config(key):
    """Each experiments/<c>/README.md is rendered from its config.yaml (`dontstop readmes`)."""
    conditions = load_conditions()
    shipped = (EXPERIMENTS_DIR / key / README).read_text(encoding="utf-8")
    assert shipped == render_readme(conditions.get(key), conditions, load_suite("paper")), \
        f"experiments/{key}/README.md differs from its config.yaml: run `dontstop readmes`"


def test_stages_are_shared_across_tasks_and_conditions(mini_suite):
    dapt = plans_by(mini_suite, "dapt")
    dapt_tapt = plans_by(mini_suite, "dapt_tapt")
    not_dapt = plans_by(mini_suite, "not_dapt")
    tapt = plans_by(mini_suite, "tapt")
    transfer = plans_by(mini_suite, "transfer_tapt")
    baseline = plans_by(mini_suite, "baseline")
    # one base stage (MLM on general text), the start of every condition and the baseline itself
    base = baseline["bbc-topic"].stages[0]
    assert base.kind == "base" and base.parent == mini_suite.base_model
    assert baseline["bbc-topic"].model == base.checkpoint_dir and baseline["bbc-topic"].lineage == "base"
    assert {plan.stages[0].key for plans in (dapt, tapt, transfer) for plan in plans.values()} == {base.key}
    # one DAPT checkpoint per domain, reused by DAPT+TAPT and by the other domains' not-DAPT
    assert dapt["aclsum-roles"].stages[1].key == dapt["aclsum-sections"].stages[1].key
    assert dapt["aclsum-roles"].stages[1].parent == base.checkpoint_dir
    assert dapt_tapt["aclsum-roles"].stages[1].key == dapt["aclsum-roles"].stages[1].key
    assert not_dapt["rt-polarity"].stages[1].key == dapt["aclsum-roles"].stages[1].key  # reviews -> cs
    assert not_dapt["aclsum-roles"].stages[1].name == "dapt-news"
    assert dapt_tapt["aclsum-roles"].lineage == "base+dapt-cs+tapt-aclsum-roles"
    assert dapt_tapt["aclsum-roles"].stages[2].key != tapt["aclsum-roles"].stages[1].key  # other parent
    # Transfer-TAPT reuses the partner's TAPT checkpoint; tasks without a partner are skipped
    assert transfer["aclsum-roles"].stages[1].key == tapt["aclsum-sections"].stages[1].key
    assert "bbc-topic" not in transfer
    assert set(plans_by(mini_suite, "knn_tapt_50")) == {k for k, t in MINI_TASKS.items() if t.knn}


def test_stage_key_changes_with_recipe_and_data(mini_suite):
    before = plans_by(mini_suite, "tapt")["aclsum-roles"].stages[-1]
    mini_suite.recipes["tapt"] = {**mini_suite.recipes["tapt"], "lr": 0.123}
    after_recipe = plans_by(mini_suite, "tapt")["aclsum-roles"].stages[-1]
    assert after_recipe.key != before.key and after_recipe.checkpoint_dir != before.checkpoint_dir
    train = f"{mini_suite.data_dir}/mini/tasks/aclsum-roles/train.jsonl"
    with open(train, "a") as f:
        f.write(json.dumps({"text": "new", "label": "a"}) + "\n")
    after_data = plans_by(mini_suite, "tapt")["aclsum-roles"].stages[-1]
    assert after_data.key != after_recipe.key
    # a new base recipe is a new base, hence a new TAPT on top of it
    mini_suite.recipes["base"] = {**mini_suite.recipes["base"], "max_steps": 7}
    assert plans_by(mini_suite, "tapt")["aclsum-roles"].stages[-1].key != after_data.key


def test_quick_overrides_and_separate_results(mini_suite):
    quick = with_quick(mini_suite)
    assert quick.seeds == mini_suite.quick_seeds
    assert quick.results_dir.endswith("quick")
    sections = {**quick.recipes, "finetune": quick.finetune, "selection": quick.selection}
    assert set(mini_suite.quick) <= set(sections)
    for section, overrides in mini_suite.quick.items():
        assert overrides.items() <= sections[section].items(), section
    assert quick.finetune["epochs"] == 1 and quick.finetune["lr"] == mini_suite.finetune["lr"]
    # and the runner builds its recipes from them
    plan = plans_by(quick, "tapt")["aclsum-roles"]
    assert plan.stages[0].recipe["max_steps"] == mini_suite.quick["base"]["max_steps"]
    assert plan.stages[1].recipe["epochs"] == 1 and plan.seeds == quick.quick_seeds


def test_bad_configs_fail_with_file_line_and_key(tmp_path):
    condition = tmp_path / "tapt"
    condition.mkdir()
    head = "condition: tapt\ndisplay: TAPT\ndescription: x\norder: 3\n"
    (condition / "config.yaml").write_text(head + "stage: [tapt]\n")
    with pytest.raises(UserError, match=r"config.yaml:5: key 'stage': unknown; known keys: condition"):
        load_condition(condition)
    (condition / "config.yaml").write_text(head.replace("display: TAPT", "display: 5"))
    with pytest.raises(UserError, match=r"config.yaml:2: key 'display': expected str, got int 5"):
        load_condition(condition)
    (condition / "config.yaml").write_text(head + "stages: [tapt:other]\n")
    with pytest.raises(UserError, match="unknown stage 'tapt:other'"):
        load_condition(condition)
    (condition / "config.yaml").write_text(head + "tables: ['4']\n")
    with pytest.raises(UserError, match="key 'tables': '4' is not one of 3, 5, 6, 7, 8, 9"):
        load_condition(condition)
    (condition / "config.yaml").write_text(head + "claims: [{claim: c, better: tapt, wrose: baseline, table: '5'}]\n")
    with pytest.raises(UserError, match=r"config.yaml: claims\[0\]: key 'wrose': unknown"):
        load_condition(condition)
    (condition / "config.yaml").write_text(head + "claims: [{claim: c, better: tapt, worse: tapt, table: '5'}]\n")
    with pytest.raises(UserError, match=r"config.yaml: key 'claims': 'c' compares 'tapt' with itself"):
        load_condition(condition)
    (condition / "config.yaml").write_text(head + "stages: [tapt]\nclaims: [{claim: c, better: tapt, worse: nope, table: '5'}]\n")
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "config.yaml").write_text(head.replace("tapt", "baseline"))   # display: TAPT too
    with pytest.raises(UserError, match=r"tapt/config.yaml: key 'display': 'TAPT' names condition 'baseline' too"):
        load_conditions(tmp_path)
    (tmp_path / "baseline" / "config.yaml").write_text(head.replace("tapt", "baseline").replace("TAPT", "RoBERTa"))
    with pytest.raises(UserError, match=r"tapt/config.yaml: condition 'nope' is not a folder of"):
        load_conditions(tmp_path)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nextends: mini\nfinetune:\n  learning_rate: 1\n")   # a study file
    with pytest.raises(UserError, match="finetune: key 'learning_rate': unknown"):
        load_suite(str(suite))


def test_missing_domain_corpus_names_the_flag(mini_suite):
    mini_suite.domain_corpora.pop("cs")
    with pytest.raises(UserError, match="no domain corpus for domain 'cs': pass --domain-corpus cs=PATH"):
        plans_by(mini_suite, "dapt")


def test_a_domain_corpus_path_that_does_not_exist_is_one_line_naming_it(mini_suite, tmp_path):
    mini_suite.domain_corpora["cs"] = str(tmp_path / "no" / "cs.txt")   # e.g. --domain-corpus cs=<typo>
    with pytest.raises(UserError, match=r"no/cs.txt: input file not found"):
        plans_by(mini_suite, "dapt")


def test_the_stage_key_covers_the_recipes_defaults(mini_suite, monkeypatch):
    """A default changed in recipes.py is a new stage (a new checkpoint), never the old one reused;
    a suite writing out a default is the same stage as one leaving it out."""
    import dataclasses

    from dontstop import stage_identity
    from dontstop.recipes import PretrainRecipe

    before = plans_by(mini_suite, "tapt")["aclsum-roles"].stages
    mini_suite.recipes["tapt"] = {**mini_suite.recipes["tapt"], "mask_prob": 0.15}   # the default
    assert [s.key for s in plans_by(mini_suite, "tapt")["aclsum-roles"].stages] == [s.key for s in before]

    @dataclasses.dataclass
    class NewDefault(PretrainRecipe):
        warmup_ratio: float = 0.1   # was 0.06

    monkeypatch.setattr(stage_identity, "PretrainRecipe", NewDefault)
    after = plans_by(mini_suite, "tapt")["aclsum-roles"].stages
    assert all(a.key != b.key and a.checkpoint_dir != b.checkpoint_dir for a, b in zip(after, before))


def test_a_recipe_field_added_at_what_stages_did_before_keeps_their_keys(mini_suite):
    """`pack_documents` came after stages had been built, all packed. At true a stage keeps its
    key, and a record written before the field reads as true (an upgrade neither rebuilds nor
    refuses a 10-GPU-hour DAPT checkpoint); false is another stage, which a packed record is not."""
    from dontstop.stage_identity import record_difference, resolved_recipe, stage_recipe

    def tapt_stage():
        return plans_by(mini_suite, "tapt")["aclsum-roles"].stages[-1]

    packed = tapt_stage()
    mini_suite.recipes["tapt"] = {**mini_suite.recipes["tapt"], "pack_documents": True}
    assert tapt_stage().key == packed.key
    mini_suite.recipes["tapt"]["pack_documents"] = False
    assert tapt_stage().key != packed.key

    recipe_then = json.loads(json.dumps(resolved_recipe({**mini_suite.recipes["tapt"], "pack_documents": True})))
    assert "pack_documents" not in recipe_then
    built_before = pretrain_record(recipe={**recipe_then, "seed": 0})
    asked = stage_recipe(mini_suite, "tapt")
    assert record_difference(built_before, recipe={**asked, "pack_documents": True}, inputs={}, seed=0) is None
    assert record_difference(built_before, recipe=asked, inputs={}, seed=0) == \
        "pack_documents: built with True, the stage asks False"


def test_the_analysis_finds_the_checkpoints_the_runner_builds(mini_suite):
    from dontstop.stage_identity import domain_checkpoints

    dapt, dapt_lora = plans_by(mini_suite, "dapt"), plans_by(mini_suite, "dapt_lora")
    built = {"base": dapt["aclsum-roles"].stages[0].checkpoint_dir}
    built |= {plan.stages[1].name: plan.stages[1].checkpoint_dir for plan in [*dapt.values(), *dapt_lora.values()]}
    assert {name: str(path) for name, path in domain_checkpoints(mini_suite).items()} == built
    assert set(built) == {"base", "dapt-cs", "dapt-news", "dapt-reviews",
                          "dapt_lora-cs", "dapt_lora-news", "dapt_lora-reviews"}


def test_only_the_stages_an_unfinished_run_or_the_analysis_needs_are_built(mini_suite):
    """All runs and probes finished, a clean cache: nothing to build for `run`, and only the base
    and DAPT stages (what the domain analysis reads) for `reproduce`."""
    from dontstop.runner.jobs import analysis_stages, make_jobs

    plans = [plan for e in load_conditions() for plan in plan_runs(mini_suite, e)]
    every = {job.stage.lineage for job in make_jobs(plans, probe=True) if job.kind == "pretrain"}
    assert len(every) > 10
    for job in make_jobs(plans, probe=True):   # every run and probe finished
        fields = job.plan and dict(task=job.plan.task.key, condition=job.plan.condition, lineage=job.plan.lineage)
        if job.kind == "finetune":
            metrics_record(seed=job.seed, **fields).write(job.done_file.parent)
        elif job.kind == "probe":
            probe_record(**fields).write(job.done_file.parent)

    def stages(**options):
        return {job.stage.lineage for job in make_jobs(plans, probe=True, **options) if job.kind == "pretrain"}

    assert stages() == every                        # dontstop status: every stage, done or not
    assert stages(analysis=[]) == set()             # dontstop run
    assert stages(analysis=analysis_stages(mini_suite, plans)) == {   # those the runs start from
        "base", "base+dapt-cs", "base+dapt-news", "base+dapt-reviews",
        "base+dapt_lora-cs", "base+dapt_lora-news", "base+dapt_lora-reviews"}
    # a run to redo (stale) needs its whole lineage again
    redo = plans_by(mini_suite, "dapt_tapt")["aclsum-roles"].run_dir(0) / METRICS_FILE
    assert stages(analysis=[], redo={redo}) == {"base", "base+dapt-cs", "base+dapt-cs+tapt-aclsum-roles"}


def test_the_analysis_scores_and_builds_the_dapt_models_the_results_or_plans_start_from(mini_suite):
    """`reproduce` scores (building them if need be) the DAPT and DAPT (LoRA) models that its plans
    or its finished runs start from, and no other: a clean clone's committed results hold LoRA
    runs, its cache none (the MLM-loss table lost its DAPT (LoRA) rows); a cache that holds a
    stage no run started from gave the table a row the results do not explain."""
    from dontstop.analysis.domains import studied_stages
    from dontstop.runner.jobs import analysis_stages, make_jobs

    plans = [plans_by(mini_suite, "tapt")["bbc-topic"]]

    def built():
        return sorted(job.stage.lineage for job in make_jobs(plans, analysis=analysis_stages(mini_suite, plans))
                      if job.kind == "pretrain")

    assert studied_stages(mini_suite) == set() and built() == ["base", "base+tapt-bbc-topic"]
    plans.append(plans_by(mini_suite, "dapt")["aclsum-roles"])   # a plan starts from DAPT on cs
    assert built() == ["base", "base+dapt-cs", "base+tapt-bbc-topic"]
    for condition, task in (("dapt_tapt_lora", "rt-polarity"), ("not_dapt", "bbc-topic")):   # finished runs
        run = plans_by(mini_suite, condition)[task]
        metrics_record(task=task, condition=condition, lineage=run.lineage).write(run.run_dir(0))
    assert studied_stages(mini_suite) == {"base", "dapt_lora-reviews", "tapt_lora-rt-polarity", "dapt-cs"}
    assert built() == ["base", "base+dapt-cs", "base+dapt_lora-reviews", "base+tapt-bbc-topic"]


def test_dapt_lora_is_one_stage_per_domain_shared_by_dapt_tapt_lora(mini_suite):
    dapt, dapt_lora = plans_by(mini_suite, "dapt"), plans_by(mini_suite, "dapt_lora")
    dapt_tapt_lora, tapt_lora = plans_by(mini_suite, "dapt_tapt_lora"), plans_by(mini_suite, "tapt_lora")
    lora = dapt_lora["aclsum-roles"].stages[1]
    assert (lora.name, lora.kind) == ("dapt_lora-cs", "dapt_lora") and lora.key != dapt["aclsum-roles"].stages[1].key
    assert lora.corpora == dapt["aclsum-roles"].stages[1].corpora            # the same domain corpus
    assert dapt_tapt_lora["aclsum-roles"].stages[1].key == lora.key == dapt_lora["aclsum-sections"].stages[1].key
    assert dapt_tapt_lora["aclsum-roles"].lineage == "base+dapt_lora-cs+tapt_lora-aclsum-roles"
    assert dapt_tapt_lora["aclsum-roles"].stages[2].parent == lora.checkpoint_dir
    assert tapt_lora["aclsum-roles"].stages[1].parent == dapt["aclsum-roles"].stages[0].checkpoint_dir  # the base
    plans = [p for plans in (dapt_lora, dapt_tapt_lora) for p in plans.values()]
    assert sorted(s.name for s in unique_stages(plans) if s.kind == "dapt_lora") == [
        "dapt_lora-cs", "dapt_lora-news", "dapt_lora-reviews"]
    # the LoRA recipe is the full one (same data seen) with its own keys and every adapter default
    full = dapt["aclsum-roles"].stages[1].recipe
    assert {k: v for k, v in lora.recipe.items() if k not in ("lr", "adapter")} == {
        k: v for k, v in full.items() if k != "lr"}
    assert lora.recipe["lr"] == mini_suite.recipes["dapt_lora"]["lr"]
    assert lora.recipe["adapter"] == dataclasses.asdict(AdapterRecipe(**mini_suite.recipes["dapt_lora"].get("adapter", {})))
    mini_suite.recipes["dapt_lora"] = {**mini_suite.recipes["dapt_lora"], "adapter": {"rank": 2}}
    assert plans_by(mini_suite, "dapt_lora")["aclsum-roles"].stages[1].key != lora.key   # a new adapter, a new stage
    # no released checkpoint stands for a LoRA stage
    mini_suite.from_released = mini_suite.from_released_dapt = True
    assert plans_by(mini_suite, "dapt_tapt_lora")["aclsum-roles"].stages[1].released is None


def paper_tapt_stages(condition: str) -> dict:
    """task -> the last stage of `condition` on the paper suite, planned as --dry-run plans it
    (files not downloaded: hashed "missing"), with every corpus and curated pool given."""
    suite = dataclasses.replace(load_suite("paper"),
                                domain_corpora={d: f"{d}.txt" for d in ("biomed", "cs", "news", "reviews")},
                                curated={"hyperpartisan_news": "hp_5k.jsonl", "imdb": "imdb_50k.txt"})
    return {p.task.key: p.stages[-1]
            for p in plan_runs(suite, load_condition(EXPERIMENTS_DIR / condition), planning_only=True)}


def test_the_paper_suites_tapt_batch_follows_the_task_size_as_table_13_and_table_9(tmp_path):
    """Table 13's TAPT batch of 256 is for tasks under 5K examples; RCT's 180K train texts took
    8.8K steps of 100 epochs (Table 9's Curated-TAPT, the same text and released model as RCT's
    TAPT): batch 2048, the large pools' recipe. It ran every TAPT at 256 (RCT: 70K steps), and
    TAPT (LoRA) stayed at 256 after TAPT had moved."""
    stages = paper_tapt_stages("tapt")
    high = {key for key, stage in stages.items() if load_suite("paper").task(key).profile == "high"}
    assert high == {"rct-20k", "ag", "amazon", "imdb"}   # the paper's tasks of 5K examples or more
    for key, stage in stages.items():
        assert stage.kind == ("tapt_large" if key in high else "tapt") and stage.name == f"tapt-{key}", key
        assert stage.recipe["batch_size"] == (2048 if key in high else 256) and stage.recipe["epochs"] == 100
    # TAPT (LoRA) sees the batches of the TAPT row it is compared with (it was at 256 on all tasks)
    for key, lora in paper_tapt_stages("tapt_lora").items():
        assert lora.kind == ("tapt_large_lora" if key in high else "tapt_lora"), key
        assert lora.recipe == {**stages[key].recipe, "lr": 1e-3, "adapter": lora.recipe["adapter"]}, key
    # Transfer-TAPT fine-tunes on the partner's very TAPT model: ChemProt on RCT's
    assert paper_tapt_stages("transfer_tapt")["chemprot"].key == stages["rct-20k"].key
    assert paper_tapt_stages("curated_tapt")["rct-sample"].recipe == stages["rct-20k"].recipe
    # a rule of the paper's four tasks, not of `profile`: a study's high-profile task keeps TAPT's recipe
    # (the mini suite's tapt_large is 1 epoch, for pools)
    from korean_study import build_korean_study

    study = load_suite(str(build_korean_study(tmp_path, rich=True)))
    assert study.task("replies").profile == "high"
    [replies] = plan_runs(study, load_condition(EXPERIMENTS_DIR / "tapt"), ["replies"], planning_only=True)
    assert replies.stages[-1].kind == "tapt" and replies.stages[-1].recipe == study.recipes["tapt"]


@pytest.mark.parametrize("condition", ["tapt", "curated_tapt", "knn_tapt_50", "rand_tapt"])
def test_the_paper_suites_tapt_trains_on_all_of_the_task_text(condition):
    """The paper's TAPT pretrains on the task's whole train text (the released TAPT models are
    named by it: chemprot_4169, rct_500); it held out up to 10% of it (200 ChemProt texts, 50 of
    RCT-500's 500) to score an MLM loss that the paper reports for DAPT only (Table 1)."""
    from dontstop.recipes import PretrainRecipe

    for key, stage in paper_tapt_stages(condition).items():
        recipe = PretrainRecipe(**{**stage.recipe, "base_model": "roberta-base", "corpora": [], "output_dir": ""})
        assert recipe.heldout_documents == 0, (condition, key)
        assert not recipe.pack_documents, (condition, key)   # a batch of 256 documents, as Table 9 counts


def test_a_stage_key_is_the_same_whichever_way_the_data_folder_is_spelled(tmp_path, monkeypatch):
    """`--data-dir /home/me/repo/data`, the folder `data` is, built every stage again: the keys
    named the input files as written; now as under `data/`, their content hashed as before."""
    from conftest import write_tiny_mini_tasks
    from dontstop.overrides import folder

    write_tiny_mini_tasks(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    keys = []
    for data in ("data", str(tmp_path / "data"), "./data/../data"):
        suite = load_suite("mini", overrides=folder("--data-dir", "data_dir", data))
        plans = [plan for condition in load_conditions() for plan in plan_runs(suite, condition, planning_only=True)]
        keys.append(sorted(stage.key for stage in unique_stages(plans)))
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) > 20
