"""bench/report_server.py, which the GPU machine's runs report through: the page's result ends it; without one by its
time limit it writes an error naming the last progress event, so a run that hangs still says how far it got."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "bench" / "report_server.py"


def start(tmp_path, timeout_s: float):
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "app.json"
    process = subprocess.Popen([sys.executable, str(SERVER), str(port), str(tmp_path), str(out), str(timeout_s)],
                               stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/report"
    for _ in range(100):  # until it listens
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
        except OSError:
            time.sleep(0.05)
    return process, url, out


def post(url: str, message: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 204


def test_the_result_ends_the_server(tmp_path):
    process, url, out = start(tmp_path, 60)
    post(url, {"event": "stage", "data": {"kernels": {"compiling": {"op": "linear"}}}})
    post(url, {"ok": True, "result": {"rows": [1]}})
    assert process.wait(timeout=10) == 0
    assert json.loads(out.read_text()) == {"ok": True, "result": {"rows": [1]}}
    assert "compiling" in process.stdout.read()


def test_no_result_in_time_is_an_error_naming_the_last_event(tmp_path):
    process, url, out = start(tmp_path, 3)
    post(url, {"event": "stage", "data": {"kernels": {"timed": [{"op": "linear", "ms": 0.2}]}}})
    post(url, {"event": "stage", "data": {"kernels": {"compiling": {"op": "conv3x3", "tiles": [128, 128, 32]}}}})
    assert process.wait(timeout=10) == 0
    result = json.loads(out.read_text())
    assert result["ok"] is False and "no result within 3 s" in result["error"]
    assert '"compiling": {"op": "conv3x3", "tiles": [128, 128, 32]}' in result["error"]
    assert "timed" not in result["error"]
