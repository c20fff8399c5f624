"""The kernel registry: one compile per kernel however many ask at once; a list compiled concurrently."""

import asyncio

import pytest

from doppler.errors import GpuError
from doppler.gpu.caps import Capabilities
from doppler.gpu.kernels import KernelRegistry, with_constants

CAPS = Capabilities("browser", "test", "", "test", frozenset(), {}, (), (32, 32))


class SlowBackend:
    """Compiles take a few event-loop turns; `refuse` names labels whose first compile fails."""

    name = "browser"
    caps = CAPS

    def __init__(self, refuse=()):
        self.compiled = []
        self.refuse = set(refuse)

    async def create_pipeline(self, code, entry, constants, label):
        for _ in range(3):
            await asyncio.sleep(0)
        if label in self.refuse:
            self.refuse.discard(label)
            raise GpuError(f"kernel {label} failed to compile: test")
        self.compiled.append(label)
        self.sent = (code, constants)
        return f"pipeline {label}"


@pytest.fixture
def kernel_dir(tmp_path):
    (tmp_path / "k.wgsl").write_text("override N: u32 = 1u;\n@compute @workgroup_size(1) fn main() {}\n")
    return tmp_path


def test_kernels_asked_for_at_once_compile_once(kernel_dir, event_loop_runner):
    backend = SlowBackend()
    registry = KernelRegistry(backend, kernel_dir)

    async def ask():
        return await asyncio.gather(registry.get("k", "main", {"N": 2}), registry.get("k", "main", {"N": 2}),
                                    registry.get("k", "main", {"N": 3}))

    a, b, c = event_loop_runner(ask())
    assert a is b and a.pipeline == "pipeline k.wgsl:main{N=2}" and c.overrides == {"N": 3}
    assert sorted(backend.compiled) == ["k.wgsl:main{N=2}", "k.wgsl:main{N=3}"]
    assert sorted(registry.requests(), key=str) == [("k", "main", {"N": 2}), ("k", "main", {"N": 3})]


def test_compile_all_names_what_failed_and_a_later_ask_retries(kernel_dir, event_loop_runner):
    backend = SlowBackend(refuse={"k.wgsl:main{N=5}"})
    registry = KernelRegistry(backend, kernel_dir)
    requests = [("k", "main", {"N": n}) for n in (4, 5, 6)] + [("gone", "main", {})]
    failed = event_loop_runner(registry.compile_all(requests))
    assert len(failed) == 2 and "k.wgsl:main{N=5} failed to compile" in failed[0] and "no kernel file" in failed[1]
    assert len(registry) == 2
    assert event_loop_runner(registry.get("k", "main", {"N": 5})).label == "k.wgsl:main{N=5}"
    assert len(registry) == 3


def test_with_constants_writes_values_and_defaults():
    code = "override TILE: u32 = 64u;  // tile\noverride VEC: bool = true;\noverride SCALE: f32 = 0.5;\n"
    assert with_constants(code, {"TILE": 128, "VEC": False}, "k") == (
        "const TILE: u32 = 128;  // tile\nconst VEC: bool = false;\nconst SCALE: f32 = 0.5;\n")
    with pytest.raises(GpuError, match="kernel k: constants the module does not declare: \\['TILES'\\]"):
        with_constants(code, {"TILES": 1}, "k")


def test_a_specialized_kernel_gets_its_overrides_as_consts(kernel_dir, event_loop_runner):
    (kernel_dir / "s.wgsl").write_text("#specialize\noverride N: u32 = 1u;\noverride M: u32 = N * 2u;\n"
                                       "@compute @workgroup_size(1) fn main() {}\n")
    backend = SlowBackend()
    registry = KernelRegistry(backend, kernel_dir)
    kernel = event_loop_runner(registry.get("s", "main", {"N": 3}))
    assert kernel.label == "s.wgsl:main{N=3}" and kernel.overrides == {"N": 3}
    assert backend.sent == ("const N: u32 = 3;\nconst M: u32 = N * 2u;\n@compute @workgroup_size(1) fn main() {}\n",
                            {})
    event_loop_runner(registry.get("k", "main", {"N": 2}))  # a plain one keeps its overrides
    assert backend.sent == ("override N: u32 = 1u;\n@compute @workgroup_size(1) fn main() {}\n", {"N": 2})
    with pytest.raises(GpuError, match="s.wgsl:main{K=1}: constants the module does not declare"):
        event_loop_runner(registry.get("s", "main", {"K": 1}))
