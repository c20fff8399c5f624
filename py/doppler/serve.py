"""The app as plain static files: one site layout used by `doppler serve` (a small static server) and `doppler dist`.

Site layout (URL prefix -> folder), relative URLs everywhere so the dist folder works under any path:
    index.html, app/, wgsl/, rules/, manifests/   from the project root
    pyodide/                                      node_modules/pyodide (npm pin in package.json)
    doppler.zip                                   the page-side `doppler` package, packed from py/ at serve time
    models/<name>/                                each folder given with --models (converted models: manifest + shards)
The server answers GET/HEAD with Range support (shards resume), right MIME types, and never leaves those folders.
"""

from __future__ import annotations

import argparse
import io
import json
import mimetypes
import os
import re
import shutil
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SITE_FILES = ("index.html", "bench.html")
SITE_FOLDERS = ("app", "wgsl", "rules", "manifests")
# Tools-layer modules: CPython only, never shipped to the page.
TOOLS_ONLY = ("doppler/convert", "doppler/cli.py", "doppler/serve.py", "doppler/browser.py",
              "doppler/generate.py")
PACKAGE_URL = "doppler.zip"
MODEL_INDEX_URL = "models/index.json"  # the served models, for the page's model picker
PACKED_ASSETS = ("wgsl", "rules")

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".wgsl": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".zip": "application/zip",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
    ".bin": "application/octet-stream",
    ".png": "image/png",
}


@dataclass(frozen=True)
class SiteLayout:
    """Where each URL of the site comes from."""

    files: dict[str, Path]  # exact URL path (no leading slash) -> file
    generated: dict[str, bytes] = field(repr=False)  # URL path -> bytes made at start: doppler.zip, models/index.json
    folders: dict[str, Path]  # URL prefix (no leading/trailing slash, may hold one, as `models/<name>`) -> folder

    def resolve(self, url_path: str) -> Path | None:
        """The file for a URL path, or None; never a path outside the layout's folders."""
        rel = unquote(url_path).lstrip("/") or "index.html"
        if rel in self.files:
            return self.files[rel]
        for prefix, base in self.folders.items():
            if rel.startswith(prefix + "/"):
                target = (base / rel[len(prefix) + 1 :]).resolve()
                if target.is_relative_to(base.resolve()) and target.is_file():
                    return target
        return None


def pack_package(root: Path) -> bytes:
    """Zip the page-side `doppler` package (sources only) and its assets (`assets/wgsl`, `assets/rules`) for
    Pyodide's `unpackArchive`, so page Python reads kernels and rules from files as CPython does."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / "py" / "doppler").rglob("*")):
            rel = path.relative_to(root / "py").as_posix()
            if path.is_dir() or "__pycache__" in rel or rel.startswith(TOOLS_ONLY):
                continue
            zf.write(path, rel)
        for folder in PACKED_ASSETS:
            for path in sorted((root / folder).rglob("*")):
                if path.is_file():
                    zf.write(path, f"assets/{path.relative_to(root).as_posix()}")
    return buf.getvalue()


def model_prefix(folder: Path) -> str:
    """The URL prefix a model folder is served under."""
    return f"models/{folder.resolve().name}"


def site_layout(root: Path = PROJECT_ROOT, models: list[Path] | None = None) -> SiteLayout:
    pyodide = root / "node_modules" / "pyodide"
    if not (pyodide / "pyodide.mjs").is_file():
        raise FileNotFoundError(f"Pyodide is not installed at {pyodide}: run `npm ci` (or `make serve`, which does it).")
    folders = {name: root / name for name in SITE_FOLDERS}
    folders["pyodide"] = pyodide
    index = []
    for folder in models or []:
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{folder} has no manifest.json: give folders written by `doppler convert`.")
        prefix = model_prefix(folder)
        folders[prefix] = folder.resolve()
        index.append({"name": json.loads(manifest.read_text()).get("name", folder.resolve().name),
                      "url": f"{prefix}/manifest.json"})
    files = {name: root / name for name in SITE_FILES}
    generated = {PACKAGE_URL: pack_package(root), MODEL_INDEX_URL: json.dumps(index).encode()}
    return SiteLayout(files=files, folders=folders, generated=generated)


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _make_handler(layout: SiteLayout, quiet: bool):
    class Handler(BaseHTTPRequestHandler):
        server_version = "doppler"

        def log_message(self, fmt, *args):  # noqa: D401 - stdlib hook
            if not quiet:
                sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

        def do_HEAD(self):
            self._serve(send_body=False)

        def do_GET(self):
            self._serve(send_body=True)

        def _serve(self, send_body: bool):
            path = urlsplit(self.path).path
            generated = layout.generated.get(unquote(path).lstrip("/"))
            if generated is not None:
                return self._send_bytes(generated, MIME_TYPES[Path(path).suffix], send_body)
            target = layout.resolve(path)
            if target is None:
                return self.send_error(HTTPStatus.NOT_FOUND, f"not found: {path}")
            mime = MIME_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            size = target.stat().st_size
            start, end = 0, size - 1
            status = HTTPStatus.OK
            if (header := self.headers.get("Range")) is not None:
                m = _RANGE.match(header.strip())
                if not m or (m[1] == "" and m[2] == ""):
                    return self._range_not_satisfiable(size)
                if m[1] == "":  # suffix range: the last N bytes
                    start = max(0, size - int(m[2]))
                else:
                    start = int(m[1])
                    end = min(size - 1, int(m[2])) if m[2] else size - 1
                if start >= size or start > end:
                    return self._range_not_satisfiable(size)
                status = HTTPStatus.PARTIAL_CONTENT
            self.send_response(status)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Cache-Control", "no-cache")
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if send_body:
                with open(target, "rb") as f:
                    f.seek(start)
                    _copy_range(f, self.wfile, end - start + 1)

        def _send_bytes(self, body: bytes, mime: str, send_body: bool):
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _range_not_satisfiable(self, size: int):
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _copy_range(src, dst, count: int, chunk: int = 1 << 20) -> None:
    while count > 0:
        data = src.read(min(chunk, count))
        if not data:
            break
        dst.write(data)
        count -= len(data)


class SiteServer:
    """A static server on a background thread: `with SiteServer(layout) as url: ...`."""

    def __init__(self, layout: SiteLayout, host: str = "127.0.0.1", port: int = 0, quiet: bool = True):
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(layout, quiet))
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_dist(layout: SiteLayout, out: Path) -> None:
    """Copy the site into `out` so any static host serves it as it is."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for rel, src in layout.files.items():
        shutil.copy2(src, out / rel)
    for prefix, src in layout.folders.items():
        shutil.copytree(src, out / prefix, ignore=shutil.ignore_patterns("*.map", "*.d.ts", "__pycache__"))
    for rel, data in layout.generated.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)


def _serve_command(args: argparse.Namespace) -> int:
    layout = site_layout(models=[Path(m) for m in args.models])
    server = SiteServer(layout, host=args.host, port=args.port, quiet=False)
    print(f"Doppler is served at {server.url}  (Ctrl-C stops)", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def _dist_command(args: argparse.Namespace) -> int:
    write_dist(site_layout(models=[Path(m) for m in args.models]), Path(args.out))
    print(f"wrote {args.out}/ (serve it with any static server)")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="serve the app on loopback")
    p.add_argument("--host", default=os.environ.get("DOPPLER_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("DOPPLER_PORT", "8000")))
    p.add_argument("--models", nargs="*", default=[], help="folders written by `doppler convert`")
    p.set_defaults(run=_serve_command)
    d = sub.add_parser("dist", help="write the app as static files")
    d.add_argument("out", nargs="?", default="dist")
    d.add_argument("--models", nargs="*", default=[])
    d.set_defaults(run=_dist_command)
