"""The static server: MIME types, byte ranges, no path outside the site, the packed package, dist."""

import io
import json
import urllib.error
import urllib.request
import zipfile

import pytest

from doppler.serve import PROJECT_ROOT, SiteServer, site_layout, write_dist


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = tmp_path_factory.mktemp("tiny")
    (model / "manifest.json").write_text('{"id": "tiny"}')
    (model / "shard-0.bin").write_bytes(bytes(range(256)) * 4)
    with SiteServer(site_layout(models=[model])) as url:
        yield url, model.name


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), b""


@pytest.mark.parametrize("path,mime", [
    ("", "text/html; charset=utf-8"),
    ("app/main.mjs", "text/javascript; charset=utf-8"),
    ("pyodide/pyodide.asm.wasm", "application/wasm"),
    ("wgsl/elementwise.wgsl", "text/plain; charset=utf-8"),
    ("doppler.zip", "application/zip"),
])
def test_mime_types(server, path, mime):
    status, headers, _ = get(server[0] + path)
    assert status == 200 and headers["Content-Type"] == mime


def test_byte_ranges_resume_shards(server):
    url = f"{server[0]}models/{server[1]}/shard-0.bin"
    status, headers, body = get(url, {"Range": "bytes=10-19"})
    assert status == 206 and body == bytes(range(10, 20)) and headers["Content-Range"] == "bytes 10-19/1024"
    status, _, body = get(url, {"Range": "bytes=1000-"})
    assert status == 206 and len(body) == 24
    status, _, body = get(url, {"Range": "bytes=-4"})
    assert status == 206 and body == bytes(range(252, 256))
    status, headers, _ = get(url, {"Range": "bytes=5000-"})
    assert status == 416 and headers["Content-Range"] == "bytes */1024"


@pytest.mark.parametrize("path", [
    "../pyproject.toml", "app/../../pyproject.toml", "app/%2e%2e/%2e%2e/pyproject.toml", "py/doppler/api.py",
    "pyproject.toml", "models/none/manifest.json", "app/",
])
def test_nothing_outside_the_site(server, path):
    assert get(server[0] + path)[0] == 404


def test_package_holds_page_side_modules_and_assets():
    names = zipfile.ZipFile(io.BytesIO(site_layout().generated['doppler.zip'])).namelist()
    assert "doppler/api.py" in names and "assets/wgsl/elementwise.wgsl" in names
    tools = ("doppler/convert", "doppler/cli.py", "doppler/serve.py", "doppler/browser.py", "doppler/generate.py")
    assert not [n for n in names if n.startswith(tools)]


def test_served_models_are_listed(server):
    status, _, body = get(server[0] + "models/index.json")
    assert status == 200 and json.loads(body) == [{"name": server[1], "url": f"models/{server[1]}/manifest.json"}]


def test_models_need_a_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        site_layout(models=[tmp_path])


def test_dist_is_plain_static_files(tmp_path):
    write_dist(site_layout(), tmp_path / "dist")
    for rel in ("index.html", "app/worker.mjs", "pyodide/pyodide.mjs", "doppler.zip", "wgsl/elementwise.wgsl"):
        assert (tmp_path / "dist" / rel).is_file(), rel
    assert (PROJECT_ROOT / "index.html").read_bytes() == (tmp_path / "dist" / "index.html").read_bytes()
