"""The shard loader in the page: OPFS cache, resume, corruption, clear errors, weights to GPU buffers."""

import copy
import hashlib
import json

import numpy as np
import pytest

from browser_harness import call, open_app, run_python
from doppler.serve import SiteServer, site_layout
from reference.checksum import xxh32

pytestmark = pytest.mark.browser
TINY = "tests/unit/data/tiny_manifest.json"


def _write_model(folder, manifest, shards):
    (folder / "shards").mkdir(parents=True, exist_ok=True)
    for spec, data in zip(manifest["shards"], shards):
        if data is not None:
            (folder / spec["path"]).write_bytes(data)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = json.load(open(TINY))
    rng = np.random.default_rng(7)
    shards = [rng.integers(0, 256, s["size"], dtype=np.uint8).tobytes() for s in base["shards"]]
    for spec, data in zip(base["shards"], shards):
        spec["sha256"] = hashlib.sha256(data).hexdigest()
    root = tmp_path_factory.mktemp("models")
    good = copy.deepcopy(base)
    _write_model(root / "tiny", good, shards)
    missing = copy.deepcopy(base) | {"id": "missing-shard"}
    _write_model(root / "missing", missing, [shards[0], shards[1], None])
    badsha = copy.deepcopy(base) | {"id": "bad-sha"}
    badsha["shards"][1]["sha256"] = "0" * 64
    _write_model(root / "badsha", badsha, shards)
    with SiteServer(site_layout(models=[root / "tiny", root / "missing", root / "badsha"])) as url:
        yield url, good, shards


@pytest.fixture(scope="module")
def page(browser, models):
    p = open_app(browser, models[0])  # its own origin: its own, empty OPFS
    p.shard_requests = []
    p.on("request", lambda r: "/shards/" in r.url and p.shard_requests.append((r.url, r.headers.get("range"))))
    yield p
    p.close()


READ_TENSOR = """
from doppler.loader import load_component
manifest, store = models["tiny-sd-test"]
weights = await load_component(gpu, store, manifest, "unet")
t = weights["conv_in.weight"]
data = await gpu.read(t)
weights.release(gpu)
data
"""


def _conv_in(models):
    _, manifest, shards = models
    entry = next(t for t in manifest["components"]["unet"]["tensors"] if t["name"] == "conv_in.weight")
    return shards[entry["shard"]][entry["offset"]:entry["offset"] + entry["bytes"]]


def test_first_load_fetches_every_shard_into_opfs(page, models):
    events = []
    page.evaluate("() => { window.downloads = []; window.doppler.on('download', (d) => window.downloads.push(d)); }")
    result = call(page, "load_model", url="models/tiny/manifest.json")
    events = page.evaluate("window.downloads")
    total = sum(len(s) for s in models[2])
    precompiled = result.pop("precompiled")
    assert result == {"id": "tiny-sd-test", "name": "Tiny SD (test fixture)", "fetchedBytes": total,
                      "totalBytes": total, "shards": 3}
    # This manifest's tensors are a sample, not a whole model: the dry run of an image fails, the download does not.
    assert precompiled["kernels"] == 0 and "text_encoder has no tensor" in precompiled["failed"][0], precompiled
    assert events and events[-1]["bytes"] == total and events[-1]["totalBytes"] == total
    cached = {m["id"]: m for m in call(page, "list_models")}
    assert cached["tiny-sd-test"]["bytes"] >= total
    assert len(page.shard_requests) == 3
    assert run_python(page, READ_TENSOR) == _conv_in(models)


def test_a_reload_makes_no_shard_requests(page):
    page.shard_requests.clear()
    assert call(page, "load_model", url="models/tiny/manifest.json")["fetchedBytes"] == 0
    assert page.shard_requests == []


def test_the_load_check_is_xxh32(page):
    # app/checksum.mjs against XXH32's reference values and a plain Python XXH32 at every tail length
    rng = np.random.default_rng(3)
    cases = [b"", b"a", b"abc"] + [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (*range(1, 40), 4099)]
    got = page.evaluate("""async (cases) => {
      const { xxh32 } = await import(new URL('app/checksum.mjs', location.href).href);
      return cases.map((c) => xxh32(new Uint8Array(c)));
    }""", [list(c) for c in cases])
    assert got[:3] == ["02cc5d05", "550d7456", "32d153ff"]
    assert got == [xxh32(c) for c in cases]


CHECKSUMS = """async ([records]) => {
  const root = await navigator.storage.getDirectory();
  const model = await (await root.getDirectoryHandle('models')).getDirectoryHandle('tiny-sd-test');
  if (records === 'drop') return model.removeEntry('checksums', { recursive: true });
  const dir = await model.getDirectoryHandle('checksums');
  for (const [name, record] of Object.entries(records || {})) {
    const w = await (await dir.getFileHandle(name)).createWritable();
    await w.write(JSON.stringify(record));
    await w.close();
  }
  const out = {};
  for await (const [name, handle] of dir.entries()) out[name] = JSON.parse(await (await handle.getFile()).text());
  return out;
}"""

# READ_TENSOR (the UNet's shard 1 uploaded), counting the worker's sha256 digests and the shard requests
COUNT_DIGESTS = """
from pyodide.code import run_js
run_js("self.digests = 0; self.sha256 ??= crypto.subtle.digest.bind(crypto.subtle); "
       "crypto.subtle.digest = (...a) => { self.digests++; return self.sha256(...a); };")
"""


def _read_tensor_counting_digests(page):
    page.shard_requests.clear()
    data = run_python(page, COUNT_DIGESTS + READ_TENSOR)
    return data, run_python(page, "from pyodide.code import run_js\nrun_js('self.digests')"), len(page.shard_requests)


def test_the_download_records_each_shards_xxh32_and_a_load_checks_only_that(page, models):
    _, manifest, shards = models
    records = page.evaluate(CHECKSUMS, [None])
    assert records == {f"shard-{i}-{spec['sha256'][:16]}": {"size": len(data), "sha256": spec["sha256"],
                                                           "xxh32": xxh32(data)}
                       for i, (spec, data) in enumerate(zip(manifest["shards"], shards))}
    assert _read_tensor_counting_digests(page) == (_conv_in(models), 0, 0)


def test_a_cache_without_checksums_is_checked_by_sha256_once(page, models):
    records = page.evaluate(CHECKSUMS, [None])
    page.evaluate(CHECKSUMS, ["drop"])  # as a cache written before checksums were recorded
    assert _read_tensor_counting_digests(page) == (_conv_in(models), 1, 0)
    assert _read_tensor_counting_digests(page) == (_conv_in(models), 0, 0)
    unet = next(name for name in records if name.startswith("shard-1-"))
    assert page.evaluate(CHECKSUMS, [None]) == {unet: records[unet]}
    assert call(page, "load_model", url="models/tiny/manifest.json")["fetchedBytes"] == 0  # the others: sha256 again
    assert page.evaluate(CHECKSUMS, [None]) == records


def test_a_wrong_checksum_record_defers_to_sha256_and_is_rewritten(page, models):
    records = page.evaluate(CHECKSUMS, [None])
    unet = next(name for name in records if name.startswith("shard-1-"))
    page.evaluate(CHECKSUMS, [{unet: records[unet] | {"xxh32": "00000000"}}])
    assert _read_tensor_counting_digests(page) == (_conv_in(models), 1, 0)
    assert page.evaluate(CHECKSUMS, [None]) == records


def _opfs_file(page, shard_index, action):
    """Corrupt or truncate a cached shard from the page (the worker's OPFS, same origin)."""
    page.evaluate("""async ([index, action]) => {
      const root = await navigator.storage.getDirectory();
      const dir = await (await root.getDirectoryHandle('models')).getDirectoryHandle('tiny-sd-test');
      for await (const [name, handle] of dir.entries()) {
        if (!name.startsWith(`shard-${index}-`)) continue;
        const size = (await handle.getFile()).size;
        const w = await handle.createWritable({ keepExistingData: true });
        if (action === 'truncate') await w.truncate(Math.floor(size / 2));
        else await w.write({ type: 'write', position: 0, data: new Uint8Array(64).fill(7) });
        await w.close();
      }
    }""", [shard_index, action])


def test_a_corrupt_cached_shard_is_detected_and_fetched_again(page, models):
    _opfs_file(page, 1, "corrupt")
    page.shard_requests.clear()
    assert run_python(page, READ_TENSOR) == _conv_in(models)
    assert len(page.shard_requests) == 1 and page.shard_requests[0][1] is None


def test_a_truncated_shard_resumes_with_a_range_request(page, models):
    _opfs_file(page, 0, "truncate")
    page.shard_requests.clear()
    result = call(page, "load_model", url="models/tiny/manifest.json")
    half = len(models[2][0]) // 2
    assert result["fetchedBytes"] == len(models[2][0]) - half
    assert page.shard_requests == [(page.shard_requests[0][0], f"bytes={half}-")]
    assert run_python(page, READ_TENSOR) == _conv_in(models)


def _error(page, url):
    with pytest.raises(Exception) as info:
        call(page, "load_model", url=url)
    return str(info.value)


def test_too_little_storage_is_a_clear_error_before_any_fetch(page):
    set_estimate = """
from pyodide.code import run_js
run_js("self.realEstimate ??= navigator.storage.estimate.bind(navigator.storage); navigator.storage.estimate = %s;")
None
"""
    run_python(page, set_estimate % "async () => ({ quota: 1048576, usage: 1000000 })")
    page.shard_requests.clear()
    try:
        message = _error(page, "models/missing/manifest.json")
    finally:
        run_python(page, set_estimate % "self.realEstimate")
    assert "model missing-shard needs 0.1 MiB more browser storage, but only 0.0 MiB is free" in message, message
    assert "delete cached models" in message and page.shard_requests == []


def test_a_missing_shard_is_a_clear_error_and_the_cache_stays(page):
    message = _error(page, "models/missing/manifest.json")
    assert "shard 2" in message and "HTTP 404" in message and "what is cached is kept" in message
    cached = {m["id"] for m in call(page, "list_models")}
    assert "tiny-sd-test" in cached
    assert call(page, "load_model", url="models/tiny/manifest.json")["fetchedBytes"] == 0


def test_a_sha_mismatch_is_a_clear_error_and_keeps_good_shards(page):
    message = _error(page, "models/badsha/manifest.json")
    assert "shard 1" in message and "sha256" in message and "differs from the manifest" in message
    page.shard_requests.clear()
    with pytest.raises(Exception):
        call(page, "load_model", url="models/badsha/manifest.json")
    assert [u for u, _ in page.shard_requests if "badsha" in u] == [page.shard_requests[0][0]]  # only shard 1 again


def test_deleting_a_model_frees_its_cache(page):
    call(page, "delete_model", id="bad-sha")
    assert "bad-sha" not in {m["id"] for m in call(page, "list_models")}


def test_the_upload_benchmark_times_each_step_of_a_shard(page, models):
    # bench/h100_app.sh's JOB=bench_upload, here on the tiny manifest's cached shards
    result = call(page, "bench_upload", model="models/tiny/manifest.json", shards=2, concurrent=2)
    assert result["shards"] == 2 and result["bytes"] == sum(len(s) for s in models[2][:2])
    assert result["concurrent"] == 2 and result["wallMs"] > 0
    steps = {"openMs", "readMs", "checkMs", "sha256Ms", "writeMs", "queueMs"}
    assert [set(r) for r in result["rows"]] == [steps] * 2
    assert all(v >= 0 for r in result["rows"] for v in r.values())
    assert result["gbPerS"] == round(result["bytes"] / 1e6 / result["wallMs"], 3)
