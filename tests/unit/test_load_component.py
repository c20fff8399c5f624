"""Component loading: a failing shard frees the component's buffers and says why."""

import asyncio
from types import SimpleNamespace

import pytest

from doppler.gpu.backend_dry import DryBackend
from doppler.gpu.caps import Capabilities
from doppler.gpu.context import Gpu
from doppler.loader.stores import ShardError
from doppler.loader.weights import load_component

CAPS = Capabilities("browser", "test", "", "test", frozenset(), {"maxBufferSize": 1 << 30}, (), (32, 32))


class Store:
    """Uploads that yield to the event loop; `corrupt` shards fail."""

    def __init__(self, corrupt=()):
        self.corrupt, self.done = set(corrupt), []

    async def upload(self, gpu, index, shard, placements):
        for _ in range(3):
            await asyncio.sleep(0)
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


def test_a_corrupt_shard_frees_the_component(event_loop_runner):
    manifest = _manifest(6)
    gpu, store = Gpu(DryBackend(CAPS), "wgsl"), Store(corrupt={1})
    with pytest.raises(ShardError, match="shard 1 is corrupt"):
        event_loop_runner(load_component(gpu, store, manifest, "unet"))
    assert store.done == [0]  # shard by shard: the first, then the corrupt one
    assert gpu.pool.live_bytes == 0 and gpu.pool.current_bytes == 0
