"""`dontstop data download` against a local HTTP server serving paper-format fixtures."""
import http.server
import json
import threading

import pytest

from dontstop.data.download import download_task, fetch
from dontstop.fileio import UserError
from dontstop.tasks import PAPER_TASKS

FIXTURE = {split: "".join(json.dumps({"text": f"{split} sentence {i}", "label": "true", "id": f"{split}{i}"}) + "\n"
                          for i in range(200)).encode() for split in ("train", "dev", "test")}


class FixtureServer(http.server.BaseHTTPRequestHandler):
    """Serves FIXTURE with Range support; `cut_after` bytes then drops the connection once."""
    files = FIXTURE
    cut_after = None
    requests = []

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1].removesuffix(".jsonl")
        body = self.files[name]
        start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-") or 0)
        type(self).requests.append((name, start))
        self.send_response(206 if start else 200)
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
    FixtureServer.files, FixtureServer.cut_after, FixtureServer.requests = dict(FIXTURE), None, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FixtureServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hyperpartisan_news"
    httpd.shutdown()


def test_download_writes_files_and_manifest_then_is_a_no_op(tmp_path, server):
    task = PAPER_TASKS["hyperpartisan_news"]
    manifest = download_task(task, tmp_path, url_base=server, progress=False)
    assert (tmp_path / "dev.jsonl").read_bytes() == FIXTURE["dev"]
    assert manifest["train"]["bytes"] == len(FIXTURE["train"]) and len(manifest["test"]["sha256"]) == 64
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    FixtureServer.requests.clear()
    assert download_task(task, tmp_path, url_base=server, progress=False) == manifest
    assert FixtureServer.requests == []


def test_interrupted_transfer_resumes_from_the_partial_file(tmp_path, server):
    FixtureServer.cut_after = 1000
    target = tmp_path / "train.jsonl"
    with pytest.raises(UserError, match="interrupted.*rerun the same command to resume"):
        fetch(f"{server}/train.jsonl", target, None, progress=False)
    assert not target.exists() and (tmp_path / "train.jsonl.part").stat().st_size == 1000
    entry = fetch(f"{server}/train.jsonl", target, None, progress=False)
    assert target.read_bytes() == FIXTURE["train"] and entry["bytes"] == len(FIXTURE["train"])
    assert FixtureServer.requests[-1] == ("train", 1000)


def test_checksum_mismatch_keeps_the_good_copy(tmp_path, server):
    task = PAPER_TASKS["hyperpartisan_news"]
    download_task(task, tmp_path, url_base=server, progress=False)
    (tmp_path / "dev.jsonl").unlink()
    FixtureServer.files["dev"] = b'{"text": "tampered", "label": "true"}\n'
    with pytest.raises(UserError, match="checksum mismatch"):
        download_task(task, tmp_path, url_base=server, progress=False)
    assert not (tmp_path / "dev.jsonl").exists() and not (tmp_path / "dev.jsonl.part").exists()
    assert (tmp_path / "train.jsonl").read_bytes() == FIXTURE["train"]


def test_file_urls_and_unreachable_hosts(tmp_path):
    source = tmp_path / "mirror"
    source.mkdir()
    for split, body in FIXTURE.items():
        (source / f"{split}.jsonl").write_bytes(body)
    manifest = download_task(PAPER_TASKS["sciie"], tmp_path / "out", url_base=source.as_uri(), progress=False)
    assert (tmp_path / "out" / "test.jsonl").read_bytes() == FIXTURE["test"] and len(manifest) == 3
    with pytest.raises(UserError, match="cannot connect"):
        fetch("http://127.0.0.1:9/x.jsonl", tmp_path / "x.jsonl", None, progress=False)
