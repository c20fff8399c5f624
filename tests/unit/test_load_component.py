"""Component loading: shards upload a few at a time; a failing shard frees the component's buffers, says why."""

import asyncio
from types import SimpleNamespace

import pytest

from doppler.gpu.backend_dry import DryBackend
from doppler.gpu.caps import Capabilities
from doppler.gpu.context import Gpu
from doppler.loader.stores import ShardError
from doppler.loader.weights import SHARD_UPLOADS_IN_FLIGHT, load_component

CAPS = Capabilities("browser", "test", "", "test", frozenset(), {"maxBufferSize": 1 << 30}, (), (32, 32))


class Store:
    """Uploads that take a few event-loop turns; counts how many run at once; `corrupt` shards fail."""

    def __init__(self, corrupt=()):
        self.corrupt, self.running, self.most, self.done = set(corrupt), 0, 0, []

    async def upload(self, gpu, index, shard, placements):
        self.running += 1
        self.most = max(self.most, self.running)
        for _ in range(3):
            await asyncio.sleep(0)
        self.running -= 1
        if index in self.corrupt:
            raise ShardError(f"shard {index} is corrupt")
        self.done.append(index)


def _manifest(shards: int):
    """A manifest's view as load_component walks it: a UNet of two 1 KiB f16 tensors a shard."""
    tensors = [SimpleNamespace(name=f"w{i}", shard=i // 2, offset=1024 * (i % 2), bytes=1024, shape=(512,),
                               dtype="f16") for i in range(2 * shards)]
    unet = SimpleNamespace(tensors=tensors)
    return SimpleNamespace(components=SimpleNamespace(present=lambda: {"unet": unet}),
                           shards=[SimpleNamespace(path=f"s{i}.bin", size=2048) for i in range(shards)])


def test_shards_upload_a_few_at_a_time(event_loop_runner):
    shards = 2 * SHARD_UPLOADS_IN_FLIGHT + 1
    gpu, store = Gpu(DryBackend(CAPS), "wgsl"), Store()
    weights = event_loop_runner(load_component(gpu, store, _manifest(shards), "unet"))
    assert sorted(store.done) == list(range(shards)) and len(weights.allocations) == shards
    assert store.most == SHARD_UPLOADS_IN_FLIGHT > 1


def test_a_corrupt_shard_frees_the_component(event_loop_runner):
    manifest = _manifest(6)
    gpu, store = Gpu(DryBackend(CAPS), "wgsl"), Store(corrupt={1})
    with pytest.raises(ShardError, match="shard 1 is corrupt"):
        event_loop_runner(load_component(gpu, store, manifest, "unet"))
    # the uploads under way finished before the buffers went; none started after the failure
    assert sorted(store.done) == [i for i in range(SHARD_UPLOADS_IN_FLIGHT) if i != 1]
    assert gpu.pool.live_bytes == 0 and gpu.pool.current_bytes == 0
