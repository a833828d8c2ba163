"""A corpus, pool or curated file is read as its name says: `.jsonl` as JSON lines ({"text": ...}),
anything else as text, one document a line. A file in another format would be read without an
error and its syntax pretrained on (or selected from a pool): a JSON object or array in a file
not named .jsonl, a spreadsheet's CSV or TSV export (quotes, commas and its label column), a
suite or study file (`dontstop data check study.yaml`).
Judged from the name and the first line, as it is read.
"""
from __future__ import annotations

import json
from pathlib import Path

import regex

TABLES = (".csv", ".tsv")
SUITE_FILES = (".yaml", ".yml")


def wrong_format(path: Path, line_no: int, raw: str) -> str | None:
    """What is wrong with reading `path` as its name says, judged at its first line; else None."""
    if line_no != 1:
        return None
    if path.suffix.lower() in TABLES:
        return (f"a {path.suffix[1:].upper()} file, but a corpus is text, one document a line (.txt), or JSON "
                "lines ({\"text\": ...}, .jsonl); as text its quotes, separators and columns would be "
                "pretrained on: export its text column")
    if path.suffix.lower() in SUITE_FILES:   # `data check study.yaml` read it as a corpus: "0 error(s)"
        return (f"a YAML file (a suite or study file?), but a corpus is text, one document a line (.txt), or JSON "
                f"lines ({{\"text\": ...}}, .jsonl); `dontstop reproduce --suite {path} --dry-run` checks "
                "every file a study reads")
    header = _table_header(raw) if path.suffix.lower() != ".jsonl" else None
    if header:   # a spreadsheet export named .txt: its header, then each row's quotes and label were documents
        return (f"a {header[0]} header ({', '.join(header[1])}): a spreadsheet export? a corpus is text, one "
                "document a line, or JSON lines ({\"text\": ...}, .jsonl); as text its separators and columns "
                "would be pretrained on: export its text column")
    if path.suffix != ".jsonl" and (_json_object(raw) or raw.strip() == "{"):   # or pretty-printed
        return ("a JSON object, but only a file named .jsonl is read as JSON (as text its syntax would be "
                "pretrained on); rename it to .jsonl")
    if _json_array(raw):
        return ("a JSON array, but a corpus is one document a line, as text or as JSON lines ({\"text\": ...}) "
                "in a file named .jsonl (as text its syntax would be pretrained on)")
    return None


# A column a spreadsheet of texts names its text column by; a header naming one, beside other columns,
# is no sentence ("id,text,label", "sentence\tlabel").
TEXT_COLUMNS = {"text", "texts", "sentence", "sentences", "content", "document", "body", "review", "abstract"}


def _table_header(raw: str) -> tuple[str, list[str]] | None:
    """('CSV' or 'TSV', the column names) when `raw` is a table's header naming a text column."""
    for kind, separator in (("TSV", "\t"), ("CSV", ",")):
        names = [name.strip().strip('"').strip() for name in raw.rstrip("\r\n").split(separator)]
        if len(names) >= 2 and all(regex.fullmatch(r"[A-Za-z_][\w.-]{0,40}", name) for name in names) \
                and TEXT_COLUMNS & {name.lower() for name in names}:
            return kind, names
    return None


def _json_array(raw: str) -> bool:
    """'[' alone (json.dump with indent), or '[{' / '["': not a text's bracket ("[Applause] Thanks")."""
    return regex.match(r'\s*\[\s*(?:$|[{"])', raw) is not None


def _json_object(raw: str) -> bool:
    if not raw.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(raw), dict)
    except json.JSONDecodeError:
        return False
