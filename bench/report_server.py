"""Serve a folder on 127.0.0.1 and print what the page POSTs: progress lines as they come, then the result.

    python3 bench/report_server.py PORT FOLDER OUT_JSON [TIMEOUT_S]

The page's autorun mode POSTs {"event": name, "data": ...} for each progress event and finally
{"ok": ..., "result" | "error": ...}, which is written to OUT_JSON and ends the server. Without a result by
TIMEOUT_S (default 600) the server writes {"ok": false, "error": ...} naming the last progress event, so a run that
hangs still says how far it got. Stdlib only (it runs on the GPU machine beside Chromium). Unlike a plain static
server it answers .mjs/.wasm with the MIME types Chromium needs.
"""

import http.server
import json
import sys
import threading
import time

port, root, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
timeout_s = float(sys.argv[4]) if len(sys.argv) > 4 else 600.0
started = time.monotonic()
finished = threading.Lock()  # taken once: by the result or by the time limit
last_event = ["none"]


def finish(message: dict) -> None:
    if not finished.acquire(blocking=False):
        return
    with open(out, "w") as f:
        json.dump(message, f)
    print(f"[{time.monotonic() - started:7.1f}s] result ok={message['ok']}", flush=True)
    threading.Thread(target=server.shutdown).start()


def give_up() -> None:
    finish({"ok": False, "error": f"no result within {timeout_s:g} s; the last progress event: {last_event[0]}"})


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".wgsl": "text/plain", ".json": "application/json"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=root, **kwargs)

    def log_message(self, *args):
        pass

    def do_POST(self):
        message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "ok" in message:
            finish(message)
        else:
            last_event[0] = json.dumps(message)[:2000]
            print(f"[{time.monotonic() - started:7.1f}s] {last_event[0][:300]}", flush=True)
        # Acknowledged only once recorded: an event the page saw answered is never missing from a time-out's error.
        self.send_response(204)
        self.end_headers()


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
timer = threading.Timer(timeout_s, give_up)
timer.daemon = True
timer.start()
server.serve_forever()
