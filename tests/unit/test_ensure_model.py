"""Making a model available: shards fetched a few at a time, progress summed over them, failures in shard order."""

import asyncio
from types import SimpleNamespace

import pytest

from doppler.loader.models import DOWNLOADS_IN_FLIGHT, ComponentArrivals, ensure_model
from doppler.loader.stores import ShardError


class Store:
    """Fetches that report progress twice and yield to the event loop; `missing` shards fail after a while."""

    def __init__(self, shards: int, cached=(), missing=()):
        self.cached, self.missing = set(cached), set(missing)
        self.size = 1000
        self.started, self.finished, self.in_flight, self.most_in_flight = [], [], 0, 0

    async def missing_bytes(self, manifest):
        return self.size * (len(manifest.shards) - len(self.cached))

    async def check_quota(self, manifest, need):
        return None

    async def ensure(self, index, shard, progress=None):
        self.started.append(index)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if index in self.cached:
                return 0
            for half in (1, 2):
                for _ in range(index % 3 + 2):  # shards finish out of order
                    await asyncio.sleep(0)
                if index in self.missing:
                    raise ShardError(f"shard {index}: HTTP 404")
                progress(index, self.size * half // 2)
            self.finished.append(index)
            return self.size
        finally:
            self.in_flight -= 1


def _manifest(shards: int):
    return SimpleNamespace(id="m", shards=[SimpleNamespace(size=1000) for _ in range(shards)])


def test_shards_download_a_few_at_a_time_with_summed_progress(event_loop_runner):
    store, events = Store(8, cached={2}), []
    result = event_loop_runner(ensure_model(_manifest(8), store, lambda name, data: events.append(data)))
    assert result == {"fetchedBytes": 7000, "totalBytes": 8000, "shards": 8}
    assert store.most_in_flight == DOWNLOADS_IN_FLIGHT > 1
    assert sorted(store.finished) == [0, 1, 3, 4, 5, 6, 7] and store.finished != sorted(store.finished)
    assert [e["bytes"] for e in events] == sorted(e["bytes"] for e in events)  # never backwards
    assert events[-1]["bytes"] == 8000 and events[-1]["etaSeconds"] == 0


def test_after_a_failure_no_shard_starts_and_the_first_failure_is_raised(event_loop_runner):
    store = Store(8, missing={1, 2})
    with pytest.raises(ShardError, match="shard 1: HTTP 404"):
        event_loop_runner(ensure_model(_manifest(8), store))
    assert store.in_flight == 0  # those in flight finished before the error came back
    assert sorted(store.started) == [0, 1, 2] and store.finished == [0]


def test_a_component_has_arrived_once_all_its_shards_have(event_loop_runner):
    tensors = {"text_encoder": [0], "unet": [1, 2, 3], "vae": [3, 4]}
    components = {name: SimpleNamespace(tensors=[SimpleNamespace(shard=i) for i in shards])
                  for name, shards in tensors.items()}
    manifest = SimpleNamespace(id="m", shards=[SimpleNamespace(size=1000) for _ in range(5)],
                               components=SimpleNamespace(present=lambda: components))
    arrivals, seen = ComponentArrivals(manifest), []

    def on_shard(index):
        arrivals.add(index)
        seen.append((index, sorted(n for n, e in arrivals.events.items() if e.is_set())))

    event_loop_runner(ensure_model(manifest, Store(5), on_shard=on_shard))
    assert sorted(i for i, _ in seen) == [0, 1, 2, 3, 4]
    for index, arrived in seen:  # after each shard: exactly the components whose shards are all in
        done = {i for i, _ in seen[:seen.index((index, arrived)) + 1]}
        assert arrived == sorted(n for n, shards in tensors.items() if set(shards) <= done)
    event_loop_runner(asyncio.wait_for(arrivals.wait("vae"), 1))
