"""The workgroup memory the ops count for a tensor-core kernel (to pick a shape that fits the device) is what its WGSL
declares: the `var<workgroup>` arrays of the module with its overrides as consts, sized by evaluating them here."""

import re
from pathlib import Path

import pytest

from doppler.gpu.kernels import expand_includes, with_constants
from doppler.ops import attention
from doppler.ops.matmul import TENSOR_CORE_NARROW_TILES, TENSOR_CORE_TILES, GemmTiles

WGSL = Path(__file__).resolve().parents[2] / "wgsl"
_CONST = re.compile(r"^const\s+(\w+)\s*:\s*\w+\s*=\s*([^;]+);", re.MULTILINE)
_WORKGROUP = re.compile(r"^var<workgroup>\s+\w+\s*:\s*([^;]+);", re.MULTILINE)
_SCALAR_BYTES = {"f16": 2, "f32": 4, "u32": 4, "i32": 4}


def workgroup_bytes(name: str, constants: dict) -> int:
    """Bytes of the workgroup variables of kernel `name` with these override values."""
    code = with_constants(expand_includes((WGSL / f"{name}.wgsl").read_text(), name,
                                          lambda p: (WGSL / p).read_text()), constants, name)
    exprs = dict(_CONST.findall(code))
    values: dict = {}

    def value(expr: str) -> int:
        # the u32 const expressions that size these arrays, as Python: integer literals, / as integer division, max
        text = re.sub(r"\b(\d+)u\b", r"\1", expr).replace("/", "//")
        names = {n: lookup(n) for n in re.findall(r"\b[A-Z_][A-Z0-9_]*\b", text)}
        return eval(text, {"max": max}, names)  # the repository's own kernels

    def lookup(n: str) -> int:
        if n not in values:
            values[n] = value(exprs[n])
        return values[n]

    def size(type_: str) -> int:
        m = re.fullmatch(r"array<(.+),\s*([^,<>]+)>", type_.strip())
        return _SCALAR_BYTES[type_.strip()] if m is None else size(m[1]) * value(m[2])

    return sum(size(t) for t in _WORKGROUP.findall(code))


def test_the_evaluation_sizes_nested_arrays_of_overrides():
    assert workgroup_bytes("attention_subgroup_matrix", {"HEAD_DIM": 4, "QUERY_BLOCKS": 1, "Q_BLOCKS": 1,
                                                         "PREFETCH": 0}) == (
        2 * 2 * 2 * (9 * 16 + 15 * 24 + 16)  # K and V: two buffers each, room for 10 blocks' offsets
        + 4 * 16 * 20 + 2 * 16 * 24 + 16)  # S, P, the rescale flags


@pytest.mark.parametrize("head_dim, knobs", [(4, {}), (40, {}), (64, {}), (80, {}), (160, {}),
                                             (40, {"QUERY_BLOCKS": 1}), (80, {"Q_BLOCKS": 2}),
                                             (160, {"QUERY_BLOCKS": 2, "PREFETCH": 0})])
def test_attention_counts_what_its_kernel_declares(head_dim, knobs):
    plan = attention.tiling(head_dim, knobs, tensor_cores=True)
    assert plan.kernel == "attention_subgroup_matrix"
    assert plan.workgroup_bytes == workgroup_bytes(plan.kernel, plan.overrides)


@pytest.mark.parametrize("tiles", [TENSOR_CORE_TILES, TENSOR_CORE_NARROW_TILES,
                                   GemmTiles(128, 256, 16, 8, 8, True, 24)])  # and a split-K GEMM's padded rows
@pytest.mark.parametrize("kernel", ["matmul_subgroup_matrix", "matmul_subgroup_matrix_f16_input",
                                    "conv2d_subgroup_matrix"])
def test_tensor_core_gemms_count_what_their_kernels_declare(kernel, tiles):
    overrides = {"TILE_M": tiles.tile_m, "TILE_N": tiles.tile_n, "TILE_K": tiles.tile_k, "THREAD_M": tiles.thread_m,
                 "THREAD_N": tiles.thread_n, "PAD": tiles.pad}
    assert tiles.workgroup_bytes(2) == workgroup_bytes(kernel, overrides)
