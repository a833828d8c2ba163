"""What the documentation names exists: every test the README's reliability tables and docs/*.md
cite (file, function and parametrize id), and every repository file they point at.

Read from the text and the test files' source (ast), importing nothing of the package.
"""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "data" / "README.md"]
# `test_x.py::name[id]`, or a bare `name` / `[id]` naming another test of the file cited before it on the line;
# a bare `test_name` with no file before it must be a test of some file
CITED = re.compile(r"(?:tests/)?(test_\w+\.py)(?:::(\w+))?(?:\[([^\]`]+)\])?|`(test_\w+)(?:\[([^\]`]+)\])?`|\(`\[([^\]`]+)\]`")
NOT_TESTS = {"test_metric"}   # a record field the docs name in backticks, not a test
REPO_PATH = re.compile(r"`((?:src/dontstop|bench|tests|docs|experiments|notebooks|paper_tables)/[\w./-]+\.\w+)`")


def functions_of_tests() -> dict[str, tuple[set[str], str]]:
    found = {}
    for path in (REPO / "tests").glob("test_*.py"):
        source = path.read_text(encoding="utf-8")
        names = {node.name for node in ast.walk(ast.parse(source))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        found[path.name] = (names, source)
    return found


def cited_tests() -> list[tuple[str, str | None, str | None, str | None]]:
    """(where, file, function, parametrize id) of every test the docs cite; file None: any file."""
    cited = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            where, file, function = f"{doc.relative_to(REPO)}:{number}", None, None
            for match in CITED.finditer(line):
                if match.group(1):
                    file, function = match.group(1), match.group(2)
                    cited.append((where, file, function, match.group(3)))
                elif match.group(4) and file:
                    function = match.group(4)
                    cited.append((where, file, function, match.group(5)))
                elif match.group(4) and match.group(4) not in NOT_TESTS:
                    cited.append((where, None, match.group(4), match.group(5)))
                elif match.group(6) and file and function:
                    cited.append((where, file, function, match.group(6)))
    return cited


def test_every_test_the_docs_cite_exists_with_that_name():
    tests, missing = functions_of_tests(), []
    cited = cited_tests()
    assert len(cited) > 100   # the README's reliability tables cite a test per row
    for where, file, function, case in cited:
        if file is None:
            file = next((name for name, (functions, _) in tests.items() if function in functions), None)
        if file is None:
            missing.append(f"{where}: {function} (in no test file)")
        elif file not in tests:
            missing.append(f"{where}: {file}")
        elif function and function not in tests[file][0]:
            missing.append(f"{where}: {file}::{function}")
        elif case and f'"{case}"' not in tests[file][1]:   # a parametrize id is a string of the file
            missing.append(f"{where}: {file}::{function}[{case}]")
    assert not missing, "cited but not there:\n" + "\n".join(missing)


def test_every_repository_file_the_docs_name_exists():
    missing = [f"{doc.relative_to(REPO)}: {path}" for doc in DOCS
               for path in REPO_PATH.findall(doc.read_text(encoding="utf-8")) if not (REPO / path).exists()]
    assert not missing, "named but not there:\n" + "\n".join(missing)
