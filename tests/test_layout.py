"""The package's shape: one subpackage per phase of the pipeline, data flowing one way, no import cycle.

Read from the source (every import statement, function-level ones included), not from
what happens to be imported at run time.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dontstop"
# The pipeline's phases in the order data flows; a phase may import shared basics and the phases before it.
PHASES = ("data", "select", "pretrain", "finetune", "analysis", "report", "runner")
SHARED = {"tasks", "conditions", "condition_folders", "suites", "overrides", "flags", "condition_readme", "study_file", "study_tasks",
          "recipes", "records", "config", "fileio", "models", "adapters", "provenance", "wandb_log", "stage_identity",
          "suite_checks", "suite_roots", "record_checks", "value_rules", "unused_settings", "save_errors",
          "weights_files"}
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every dontstop module `path` imports, anywhere in the file."""
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if not target.startswith("dontstop"):
                continue
            for alias in node.names:  # `from . import vocab` imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                          else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dontstop")}
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycle():
    edges = graph()
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for target in edges.get(node, ()):
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join(path + [target]))
            if target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node, [node])


def test_data_flows_one_way_and_shared_basics_import_no_phase():
    for module, targets in graph().items():
        here = layer(module)
        for target in targets:
            there = layer(target)
            if here in SHARED:
                assert there in SHARED, f"{module} (shared basic) imports the phase {target}"
            elif here in PHASES and there in PHASES:
                assert PHASES.index(there) <= PHASES.index(here), f"{module} imports {target}: upstream"


def test_only_the_top_cli_imports_a_phase_cli():
    for module, targets in graph().items():
        for target in targets:
            if target.endswith(".cli") and target != "dontstop.cli":
                assert module == "dontstop.cli", f"{module} imports {target}"
    top = (PACKAGE / "cli.py").read_text()
    assert all(f'"dontstop.{phase}.cli"' in top for phase in PHASES if phase != "runner") and "dontstop.runner.cli" in top


def test_modules_are_small_and_entry_points_open_with_their_command():
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines; split it"
    for path in PACKAGE.rglob("cli.py"):
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and docstring.startswith("dontstop"), f"{path}: docstring must start with its command"
