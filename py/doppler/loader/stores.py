"""Where shard bytes come from. Two stores, one contract:

    await store.ensure(index, shard, progress) -> bytes fetched   (make the shard available, verified)
    await store.upload(gpu, index, shard, placements)              (verify again and write into GPU buffers)

`BrowserShardStore` (page): fetch with Range resume into OPFS and SubtleCrypto sha256, through `app/shards.mjs`, so
shard bytes never enter Python; a cached shard's upload checks the XXH32 recorded when its sha256 matched (~8x
faster than a sha256). `LocalShardStore` (native backend, CPython tools): files next to the manifest.
A corrupt cached shard found at upload is deleted and fetched once more; other errors keep the cache as it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import DopplerError


class ShardError(DopplerError):
    """A shard is missing, corrupt or unreachable; the message names it and the fix."""


def _fmt_mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class LocalShardStore:
    """Shards read from a model folder on disk (native backend)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, shard) -> Path:
        if shard.path is None:
            raise ShardError(f"shard {shard.url} has only a URL; the native backend reads model folders")
        return self.folder / shard.path

    async def missing_bytes(self, manifest) -> int:
        return 0  # a local folder is complete or broken; `ensure` says which

    async def check_quota(self, manifest, need: int) -> None:
        return None

    async def ensure(self, index, shard, progress=None) -> int:
        path = self._path(shard)
        if not path.is_file():
            raise ShardError(f"shard {index} ({path}) is missing: convert the model again or restore the file")
        if path.stat().st_size != shard.size:
            raise ShardError(f"shard {index} ({path}) has {path.stat().st_size} bytes, not {shard.size}: it is "
                             f"truncated or from another conversion")
        return 0

    async def read_text(self, path: str) -> str:
        return (self.folder / path).read_text(encoding="utf-8")

    async def upload(self, gpu, index, shard, placements) -> None:
        data = self._path(shard).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != shard.sha256:
            raise ShardError(f"shard {index} ({self._path(shard)}) has sha256 {digest}, not {shard.sha256}: the "
                             f"file is corrupt or from another conversion")
        data += bytes(-len(data) % 4)
        for buffer, buffer_offset, shard_offset, nbytes in placements:
            gpu.backend.write_buffer(buffer, buffer_offset, data[shard_offset:shard_offset + nbytes])


class BrowserShardStore:
    """OPFS cache in the worker, filled from `base_url` (the manifest's folder) or each shard's own URL."""

    def __init__(self, model_id: str, base_url: str):
        import doppler_shards  # type: ignore[import-not-found]  # app/shards.mjs, registered by the worker

        self.js = doppler_shards
        self.model_id = model_id
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    def url(self, shard) -> str:
        return shard.url or self.base_url + shard.path

    def _name(self, index, shard) -> str:
        return f"shard-{index}-{shard.sha256[:16]}"

    async def missing_bytes(self, manifest) -> int:
        """Bytes still to fetch: each shard's size less what its file holds (all of it, where the file is longer:
        fetchShard then starts it over)."""
        sizes = json.loads(await self.js.cachedSizes(self.model_id))
        total = 0
        for index, shard in enumerate(manifest.shards):
            have = sizes.get(self._name(index, shard), 0)
            total += shard.size - (have if have <= shard.size else 0)
        return total

    async def check_quota(self, manifest, need: int) -> None:
        estimate = json.loads(await self.js.storageEstimate())
        free = estimate["quota"] - estimate["usage"]
        if need > free:
            raise ShardError(
                f"model {manifest.id} needs {_fmt_mib(need)} more browser storage, but only {_fmt_mib(free)} is "
                f"free: delete cached models in the page, or allow this site persistent storage, then retry"
            )

    async def ensure(self, index, shard, progress=None) -> int:
        from pyodide.ffi import JsException, create_proxy  # type: ignore[import-not-found]

        callback = create_proxy(lambda n: progress(index, n) if progress else None)
        try:
            return await self.js.fetchShard(self.model_id, self._name(index, shard), self.url(shard), shard.size,
                                            shard.sha256, callback)
        except JsException as e:
            raise ShardError(f"shard {index}: {e.message}") from None
        finally:
            callback.destroy()

    async def upload(self, gpu, index, shard, placements) -> None:
        from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

        name = self._name(index, shard)
        js_placements = to_js([list(p) for p in placements])
        try:
            await self.js.uploadShard(gpu.backend.device, self.model_id, name, shard.size, shard.sha256, js_placements)
        except JsException as e:
            if "corrupt" not in e.message:
                raise ShardError(f"shard {index}: {e.message}") from None
            # The cached copy went bad since it was written: fetch it again, once.
            await self.ensure(index, shard)
            await self.js.uploadShard(gpu.backend.device, self.model_id, name, shard.size, shard.sha256, js_placements)

    async def read_text(self, path: str) -> str:
        """A small file next to the manifest (tokenizer vocab and merges), fetched as text."""
        from pyodide.http import pyfetch  # type: ignore[import-not-found]

        response = await pyfetch(self.base_url + path)
        if not response.ok:
            raise ShardError(f"fetching {self.base_url + path}: HTTP {response.status}: the model's files are not "
                             f"where its manifest says")
        return await response.string()

    async def time_upload(self, gpu, index, shard) -> dict:
        """The steps of an upload of this cached shard, timed apart (app/shards.mjs's timeUploadShard), for
        bench_upload: {openMs, readMs, checkMs, sha256Ms, writeMs, queueMs}."""
        name = self._name(index, shard)
        return json.loads(await self.js.timeUploadShard(gpu.backend.device, self.model_id, name, shard.size))

    async def save_manifest(self, text: str) -> None:
        await self.js.saveManifest(self.model_id, text)
