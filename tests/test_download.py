"""`dontstop data download` against a local HTTP server serving paper-format fixtures."""
import hashlib
import http.server
import json
import re
import shutil
import socket
import threading

import pytest

from dontstop.cli import main
from dontstop.data.download import data_base, download_task, fetch
from dontstop.fileio import UserError
from dontstop.tasks import PAPER_TASKS, S3_DATA, SPLITS, data_urls
from paper_world import serve_directory, write_paper_tasks

FIXTURE = {split: "".join(json.dumps({"text": f"{split} sentence {i}", "label": ("true", "false")[i % 2], "id": f"{split}{i}"}) + "\n"
                          for i in range(200)).encode() for split in ("train", "dev", "test")}
TASK_FILES = ["dev.jsonl", "manifest.json", "test.jsonl", "train.jsonl"]


class FixtureServer(http.server.BaseHTTPRequestHandler):
    """Serves FIXTURE at any <...>/<split>.jsonl as S3 does: an ETag of its bytes, and Range
    honoured unless If-Range names another version (then the whole file, 200); `cut_after`
    bytes then drops the connection once."""
    files = FIXTURE
    cut_after = None
    requests = []

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1].removesuffix(".jsonl")
        body = self.files[name]
        etag = f'"{hashlib.md5(body).hexdigest()}"'
        start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-") or 0)
        if self.headers.get("If-Range", etag) != etag:   # changed since the .part began
            start = 0
        type(self).requests.append((name, start))
        self.send_response(206 if start else 200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.cut_after is not None:
            payload = payload[: self.cut_after]
            type(self).cut_after = None
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """The base URL of a FixtureServer: <base>/<task>/<split>.jsonl, as on S3."""
    FixtureServer.files, FixtureServer.cut_after, FixtureServer.requests = dict(FIXTURE), None, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FixtureServer)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def s3(tmp_path):
    """The paper's 9 tasks in their released layout, served over HTTP: (folder, base URL)."""
    root = tmp_path / "s3"
    write_paper_tasks(root)
    with serve_directory(root) as url:
        yield root, url


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory (so the default --data-dir `data` lands in it), no env base."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DONTSTOP_DATA_URL", raising=False)
    return work


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"   # nothing listens there any more: connection refused


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_urls_are_computed_from_a_base_in_the_s3_layout(monkeypatch):
    monkeypatch.delenv("DONTSTOP_DATA_URL", raising=False)
    assert data_base() == S3_DATA
    assert data_urls("imdb") == {split: f"{S3_DATA}/imdb/{split}.jsonl" for split in SPLITS}
    assert data_urls("ag", "http://mirror/dsp/")["dev"] == "http://mirror/dsp/ag/dev.jsonl"
    monkeypatch.setenv("DONTSTOP_DATA_URL", "http://env-mirror/x/")
    assert data_base() == "http://env-mirror/x" and data_base("file:///srv/d") == "file:///srv/d"


def test_download_writes_files_and_manifest_then_is_a_no_op(tmp_path, server):
    task = PAPER_TASKS["hyperpartisan_news"]
    manifest = download_task(task, tmp_path, base=server, progress=False)
    assert (tmp_path / "dev.jsonl").read_bytes() == FIXTURE["dev"]
    assert manifest["train"]["bytes"] == len(FIXTURE["train"]) and len(manifest["test"]["sha256"]) == 64
    assert manifest["dev"]["url"] == f"{server}/hyperpartisan_news/dev.jsonl"
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    FixtureServer.requests.clear()
    assert download_task(task, tmp_path, base=server, progress=False) == manifest
    assert FixtureServer.requests == []
    for damaged in ([1, 2], {**manifest, "train": "abc"}, {**manifest, "dev": {"url": "x"}}):   # a traceback each
        (tmp_path / "manifest.json").write_text(json.dumps(damaged))
        with pytest.raises(UserError, match=re.escape(f"{tmp_path}/manifest.json: not the manifest a download "
                                                      "writes ({split: {url, sha256, bytes}}); remove it")):
            download_task(task, tmp_path, base=server, progress=False)


def test_a_split_edited_since_or_of_ones_own_is_kept_aside_not_replaced_unsaid(tmp_path, server, capsys):
    """A split edited after its download, or the files one put there by hand (no manifest), were
    replaced by the mirror's, exit 0, without a word."""
    task = PAPER_TASKS["hyperpartisan_news"]
    download_task(task, tmp_path, base=server, progress=False)
    edited = (tmp_path / "train.jsonl").read_bytes().replace(b'"text": "', b'"text": "MY EDIT ', 1)
    (tmp_path / "train.jsonl").write_bytes(edited)
    (tmp_path / "manifest.json").unlink()   # one's own files: none recorded
    (tmp_path / "train.jsonl.replaced-1").write_text("an earlier one")
    capsys.readouterr()
    download_task(task, tmp_path, base=server, progress=False)
    assert (tmp_path / "train.jsonl").read_bytes() == FIXTURE["train"]
    assert (tmp_path / "train.jsonl.replaced-2").read_bytes() == edited
    assert (tmp_path / "train.jsonl.replaced-1").read_text() == "an earlier one"
    assert not list(tmp_path.glob("dev.jsonl.replaced-*"))   # the same bytes as the mirror's: nothing to keep
    assert (f"note: {tmp_path}/train.jsonl: not the bytes manifest.json records (edited, or files of one's own?); "
            "kept as train.jsonl.replaced-2") in capsys.readouterr().err


def test_interrupted_transfer_resumes_from_the_partial_file(tmp_path, server):
    FixtureServer.cut_after = 1000
    target = tmp_path / "train.jsonl"
    with pytest.raises(UserError, match="interrupted.*rerun the same command to resume"):
        fetch(f"{server}/train.jsonl", target, None, progress=False)
    assert not target.exists() and (tmp_path / "train.jsonl.part").stat().st_size == 1000
    entry = fetch(f"{server}/train.jsonl", target, None, progress=False)
    assert target.read_bytes() == FIXTURE["train"] and entry["bytes"] == len(FIXTURE["train"])
    assert FixtureServer.requests[-1] == ("train", 1000)


def test_a_partial_file_of_another_version_or_mirror_is_fetched_again_from_the_start(tmp_path, server):
    """A .part was resumed whatever it held: the file changed on the server (or another mirror
    given) had its rest appended to the old bytes, two versions in one file, exit 0."""
    FixtureServer.cut_after = 1000
    target = tmp_path / "train.jsonl"
    with pytest.raises(UserError, match="interrupted"):
        fetch(f"{server}/train.jsonl", target, None, progress=False)
    FixtureServer.files["train"] = FIXTURE["train"].replace(b"sentence", b"SENTENCE")   # a new version
    fetch(f"{server}/train.jsonl", target, None, progress=False)
    assert target.read_bytes() == FixtureServer.files["train"] and FixtureServer.requests[-1] == ("train", 0)
    FixtureServer.cut_after = 1000
    with pytest.raises(UserError, match="interrupted"):
        fetch(f"{server}/train.jsonl", tmp_path / "dev.jsonl", None, progress=False)
    fetch(f"{server}/other-mirror/train.jsonl", tmp_path / "dev.jsonl", None, progress=False)   # another URL
    assert FixtureServer.requests[-1] == ("train", 0)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dev.jsonl", "train.jsonl"]   # no .part left


def test_cut_transfer_on_the_command_line_is_one_line_and_resumes(workdir, server, capsys):
    FixtureServer.cut_after = 1000
    assert main(["data", "download", "hyperpartisan_news", "--data-url", server]) == 2
    line = one_error_line(capsys)
    assert f"{server}/hyperpartisan_news/train.jsonl" in line and "interrupted" in line
    dest = workdir / "data" / "paper" / "tasks" / "hyperpartisan_news"
    assert sorted(p.name for p in dest.iterdir()) == ["train.jsonl.part", "train.jsonl.part-source"]
    assert main(["data", "download", "hyperpartisan_news", "--data-url", server]) == 0
    assert sorted(p.name for p in dest.iterdir()) == TASK_FILES
    assert all((dest / f"{split}.jsonl").read_bytes() == FIXTURE[split] for split in SPLITS)
    assert ("train", 1000) in FixtureServer.requests


def test_checksum_mismatch_keeps_the_good_copy(tmp_path, server):
    task = PAPER_TASKS["hyperpartisan_news"]
    download_task(task, tmp_path, base=server, progress=False)
    (tmp_path / "dev.jsonl").unlink()
    FixtureServer.files["dev"] = b'{"text": "tampered", "label": "true"}\n'
    with pytest.raises(UserError, match="checksum mismatch"):
        download_task(task, tmp_path, base=server, progress=False)
    assert not (tmp_path / "dev.jsonl").exists() and not (tmp_path / "dev.jsonl.part").exists()
    assert (tmp_path / "train.jsonl").read_bytes() == FIXTURE["train"]


def test_file_urls_and_unreachable_hosts(tmp_path):
    source = tmp_path / "mirror" / "sciie"
    source.mkdir(parents=True)
    for split, body in FIXTURE.items():
        (source / f"{split}.jsonl").write_bytes(body)
    manifest = download_task(PAPER_TASKS["sciie"], tmp_path / "out", base=source.parent.as_uri(),
                             progress=False)
    assert (tmp_path / "out" / "test.jsonl").read_bytes() == FIXTURE["test"] and len(manifest) == 3
    with pytest.raises(UserError, match="cannot connect"):
        fetch("http://127.0.0.1:9/x.jsonl", tmp_path / "x.jsonl", None, progress=False)


# --- The command against the offline paper world (tests/paper_world.py) -------------------------

@pytest.mark.parametrize("via", ["flag", "env"])
def test_download_command_fetches_exactly_the_served_files(workdir, s3, monkeypatch, capsys, via):
    root, url = s3
    if via == "flag":   # the flag wins over an environment variable that points nowhere
        monkeypatch.setenv("DONTSTOP_DATA_URL", closed_port_url())
        args = ["--data-url", url]
    else:
        monkeypatch.setenv("DONTSTOP_DATA_URL", url + "/")
        args = []
    assert main(["data", "download", "chemprot", "citation_intent", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and out.startswith("chemprot: data/paper/tasks/chemprot (train ")
    tasks = workdir / "data" / "paper" / "tasks"
    assert sorted(p.name for p in tasks.iterdir()) == ["chemprot", "citation_intent"]
    for key in ("chemprot", "citation_intent"):
        assert sorted(p.name for p in (tasks / key).iterdir()) == TASK_FILES
        for split in SPLITS:
            assert (tasks / key / f"{split}.jsonl").read_bytes() == (root / key / f"{split}.jsonl").read_bytes()
        manifest = json.loads((tasks / key / "manifest.json").read_text())
        assert manifest["test"]["url"] == f"{url}/{key}/test.jsonl"
    assert main(["data", "check", "data/paper/tasks/chemprot", "data/paper/tasks/citation_intent"]) == 0
    assert "checked 2 item(s): 0 error(s)" in capsys.readouterr().out


def test_a_mirror_serving_fewer_examples_than_published_is_named_in_a_note(workdir, s3, capsys):
    """A train.jsonl cut to 10 whole lines passes every line's check: the download and `data
    check` say the splits are not the published ones (a note, not an error: the stand-in
    world's tasks, like any sample, are smaller than the paper's)."""
    root, url = s3
    train = root / "chemprot" / "train.jsonl"
    train.write_text("".join(train.read_text().splitlines(keepends=True)[:10]))
    held_out = "/".join(str(len((root / "chemprot" / f"{s}.jsonl").read_text().splitlines())) for s in ("dev", "test"))
    said = (f"data/paper/tasks/chemprot: train/dev/test hold 10/{held_out} examples, the published ChemProt "
            "splits 4169/2427/3469 (a sample, or a copy cut short?)")
    assert main(["data", "download", "chemprot", "--data-url", url]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and captured.err.splitlines() == [f"note: {said}"]
    assert main(["data", "download", "chemprot", "--data-url", url]) == 0   # nothing new: no second note
    assert capsys.readouterr().err == ""
    assert main(["data", "check", "data/paper/tasks/chemprot"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [f"{said} [warning]",
                                                         "checked 1 item(s): 0 error(s), 1 warning(s)"]


@pytest.mark.parametrize("args", [[], ["--all"]])
def test_no_task_keys_downloads_the_whole_paper_suite(workdir, s3, capsys, args):
    root, url = s3
    assert main(["data", "download", "--data-url", url, *args]) == 0
    tasks = workdir / "data" / "paper" / "tasks"
    assert sorted(p.name for p in tasks.iterdir()) == sorted(PAPER_TASKS)
    assert all((tasks / key / "dev.jsonl").read_bytes() == (root / key / "dev.jsonl").read_bytes()
               for key in PAPER_TASKS)
    assert main(["data", "check", "data/paper"]) == 0


def test_a_404_is_one_line_and_replaces_nothing(workdir, s3, capsys):
    root, url = s3
    assert main(["data", "download", "chemprot", "--data-url", url]) == 0
    dest = workdir / "data" / "paper" / "tasks" / "chemprot"
    good = {split: (dest / f"{split}.jsonl").read_bytes() for split in SPLITS}
    (dest / "manifest.json").unlink()   # a copy with no record: the command must go to the server
    shutil.rmtree(root / "chemprot")
    capsys.readouterr()
    assert main(["data", "download", "chemprot", "--data-url", url]) == 2
    line = one_error_line(capsys)
    assert f"{url}/chemprot/train.jsonl" in line and "404" in line
    assert sorted(p.name for p in dest.iterdir()) == ["dev.jsonl", "test.jsonl", "train.jsonl"]
    assert {split: (dest / f"{split}.jsonl").read_bytes() for split in SPLITS} == good


def test_a_split_missing_on_the_server_creates_no_final_file(workdir, s3, capsys):
    root, url = s3
    dev = (root / "sciie" / "dev.jsonl").read_bytes()
    (root / "sciie" / "dev.jsonl").unlink()
    assert main(["data", "download", "sciie", "--data-url", url]) == 2
    assert f"{url}/sciie/dev.jsonl" in one_error_line(capsys)
    dest = workdir / "data" / "paper" / "tasks" / "sciie"
    # kept to resume from, with the version it is of
    assert sorted(p.name for p in dest.iterdir()) == ["train.jsonl.part", "train.jsonl.part-source"]
    (root / "sciie" / "dev.jsonl").write_bytes(dev)
    assert main(["data", "download", "sciie", "--data-url", url]) == 0
    assert sorted(p.name for p in dest.iterdir()) == TASK_FILES
    assert all((dest / f"{s}.jsonl").read_bytes() == (root / "sciie" / f"{s}.jsonl").read_bytes()
               for s in SPLITS)


def test_a_refused_connection_is_one_line_naming_the_url(workdir, capsys):
    url = closed_port_url()
    assert main(["data", "download", "chemprot", "--data-url", url]) == 2
    line = one_error_line(capsys)
    assert f"{url}/chemprot/train.jsonl" in line and "cannot connect" in line
    assert not (workdir / "data").exists()


@pytest.mark.parametrize("bad", ["ftp://x", "not-a-url", "http://", "http://host:port/data"])
@pytest.mark.parametrize("via", ["flag", "env"])
def test_a_bad_url_is_one_line_naming_it(workdir, monkeypatch, capsys, bad, via):
    if via == "env":
        monkeypatch.setenv("DONTSTOP_DATA_URL", bad)
    assert main(["data", "download", "chemprot", *(["--data-url", bad] if via == "flag" else [])]) == 2
    line = one_error_line(capsys)
    assert bad in line and ("--data-url" if via == "flag" else "DONTSTOP_DATA_URL") in line
    assert not (workdir / "data").exists()


def test_unknown_task_keys_name_the_known_ones(workdir, capsys):
    assert main(["data", "download", "chemprot", "nope", "--data-url", closed_port_url()]) == 2
    line = one_error_line(capsys)
    assert "'nope'" in line and all(key in line for key in PAPER_TASKS)
    assert main(["data", "download", "--all", "chemprot"]) == 2
    assert "--all" in one_error_line(capsys)
    assert not (workdir / "data").exists()


class OddServer(http.server.BaseHTTPRequestHandler):
    """A mirror that answers every request with `reply`: (status, headers)."""
    reply = (200, {})

    def do_GET(self):
        status, headers = self.reply
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value.format(path=self.path))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("reply, says", [
    ((200, {"Content-Length": "abc"}), "no valid HTTP response (Content-Length 'abc')"),   # a ValueError traceback
    ((302, {"Location": "{path}"}), "HTTP 302 The HTTP server returned a redirect error that would lead to an "
                                    "infinite loop. The last 30x error message was: Found"),   # three lines
])
def test_a_mirror_answering_oddly_is_one_line(tmp_path, reply, says):
    OddServer.reply = reply
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OddServer)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/train.jsonl"
        with pytest.raises(UserError) as error:
            fetch(url, tmp_path / "train.jsonl", None, progress=False)
        assert str(error.value) == f"{url}: {says}"
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not list(tmp_path.iterdir())
