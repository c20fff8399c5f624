"""GroupNorm over NHWC maps (`wgsl/groupnorm.wgsl`): y = (x - mean_bg) * rstd_bg * gamma_c + beta_c, optional SiLU.
x is f32; y f32, or f16 (`wgsl/groupnorm_f16_output.wgsl`, shader-f16) for maps only tensor-core GEMMs read.

mean_bg and var_bg run over the H*W*(C/G) values of batch b, group g; rstd = 1/sqrt(var + eps). `group_norm` does
it all (one workgroup a group in one dispatch where groups are small enough, else two passes where each workgroup of
the second can combine its groups' partial moments itself, else four);
the tiled VAE decode shares one map's statistics across its tiles instead: `accumulate_moments` per tile (its core
`Window`), then `finalize`, then `apply` per tile. Only `group_norm` allocates (its scratch, from the pool): plans
replay what callers own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, u32

CHANNELS_PER_WORKGROUP = 64  # CT (at most, whole groups where a kernel combines them): adjacent channels, so each
#                              warp reads contiguous memory
LANES = 4  # threads along a pixel row
REDUCE_WORKGROUP = 256
# group_norm normalizes in the pass that combines the statistics where each workgroup's share of that is at most this
# many partial moments a thread (SD 1.5's UNet maps: 1.6; the VAE's 256x256 and 512x512 maps, 8-32, take the
# separate passes).
FUSED_PARTIALS_PER_THREAD = 4
# group_norm takes one workgroup a (batch, group), all of it in one dispatch (whole_group), for groups of at most
# WHOLE_GROUP_MAX_VALUES values where B x G makes WHOLE_GROUP_WORKGROUPS workgroups or more, a quarter as many at
# half as many workgroups (the limit goes with their count squared). Its time goes with a group's values, the
# passes' with the whole map's: on an H200 (bench/RESULTS.md, session 18) at 64 workgroups (CFG's batch 2) it ran the
# UNet's maps 1.2-1.9x faster (at most 64x64 x 960 / 32 = 122880 values; 2 x 64x64 x 320 a tie); at 32 (batch 1)
# 1.2-1.6x faster up to 20480 values (32x32 x 640), 1.1-1.5x slower from 40960 (64x64 x 320, the VAE's 64x64 x 512).
WHOLE_GROUP_MAX_VALUES = 131072
WHOLE_GROUP_WORKGROUPS = 64
WHOLE_GROUP_WORKGROUP = 1024  # threads of a whole_group workgroup, at most (the device's limit, a power of two)
OUT_KERNELS = {"f32": "groupnorm", "f16": "groupnorm_f16_output"}  # y's dtype -> the file of normalize and apply


@dataclass(frozen=True)
class GroupNorm:
    WGSL_NAME: ClassVar[str] = "GroupNorm"
    batch: int = u32()
    height: int = u32()
    width: int = u32()
    channels: int = u32()
    groups: int = u32()
    row0: int = u32()
    rows: int = u32()
    col0: int = u32()
    cols: int = u32()
    eps: float = f32()
    accumulate: int = u32()


@dataclass(frozen=True)
class Window:
    """The pixels of a map that count towards its statistics: rows top..top+height, columns left..left+width."""

    top: int
    left: int
    height: int
    width: int


def partials_shape(x_shape: tuple[int, ...], groups: int, window: Window | None = None) -> tuple[int, int, int, int]:
    """Shape of the scratch `accumulate_moments` needs: (B, window rows, G, 2)."""
    return (x_shape[0], window.height if window else x_shape[1], groups, 2)


def group_tile(channels: int, groups: int) -> int:
    """CT of the kernels that combine whole groups: the most whole groups in CHANNELS_PER_WORKGROUP (at least one)."""
    cg = channels // groups
    return cg * max(1, CHANNELS_PER_WORKGROUP // cg)


def _check(x, groups: int, **tensors) -> tuple[int, int, int, int]:
    if len(x.shape) != 4:
        raise GpuError(f"group norm: {x.label} has shape {x.shape}; give an NHWC map (B, H, W, C)")
    b, _, _, c = x.shape
    if x.dtype != "f32":
        raise GpuError(f"group norm: {x.label} is stored as {x.dtype}; maps are f32 on this path")
    if "out" in tensors and tensors["out"].dtype not in OUT_KERNELS:
        raise GpuError(f"group norm: out {tensors['out'].label} is {tensors['out'].dtype}; write f32, or f16 for "
                       f"maps only tensor-core GEMMs read")
    if groups < 1 or c % groups:
        raise GpuError(f"group norm: {c} channels of {x.label} do not split into {groups} groups")
    expected = {"gamma": (c,), "beta": (c,), "out": x.shape, "stats": (b, groups, 2), "moments": (b, groups, 3)}
    for name, t in tensors.items():
        if tuple(t.shape) != expected[name]:
            raise GpuError(f"group norm: {name} {t.label} has shape {t.shape}; expected {expected[name]} for {x.label}")
    if "out" in tensors and tensors["out"].alloc is x.alloc:
        raise GpuError(f"group norm: out and x share the buffer of {x.label}; in-place normalization is not supported")
    if "gamma" in tensors and not tensors["gamma"].dtype == tensors["beta"].dtype in ("f32", "f16"):
        dtypes = f"{tensors['gamma'].dtype} and {tensors['beta'].dtype}"
        raise GpuError(f"group norm: gamma and beta are stored as {dtypes}; store both as f32 or both as f16")
    return x.shape


def _window(x, window: Window | None) -> Window:
    h, w = x.shape[1:3]
    win = window or Window(0, 0, h, w)
    inside = 0 <= win.top and win.top + win.height <= h and 0 <= win.left and win.left + win.width <= w
    if min(win.height, win.width) < 1 or not inside:
        raise GpuError(f"group norm: window {win} does not lie inside the {h}x{w} map {x.label}")
    return win


def _uniform(shape, groups: int, window: Window, eps: float = 0.0, accumulate: bool = False) -> bytes:
    b, h, w, c = shape
    return pack(GroupNorm(b, h, w, c, groups, window.top, window.height, window.left, window.width, eps,
                          int(accumulate)))


async def _partial_moments(gpu, x, partials, groups: int, window: Window, **uniform) -> bytes:
    """Per-row partial moments of each group over the window into `partials`; returns the uniform bytes."""
    b, _, _, c = x.shape
    need = 2 * b * window.height * groups
    if partials.numel < need or partials.dtype != "f32":
        raise GpuError(f"group norm: scratch {partials.label} holds {partials.numel} {partials.dtype}; the partial "
                       f"moments of {x.label} need {need} f32 (see partials_shape)")
    ct = group_tile(c, groups)
    if ct * LANES > gpu.caps.limits["maxComputeInvocationsPerWorkgroup"]:
        raise GpuError(f"group norm: groups of {c // groups} channels ({x.label}) need workgroups of {ct * LANES} "
                       f"invocations; this GPU allows {gpu.caps.limits['maxComputeInvocationsPerWorkgroup']}")
    data = _uniform(x.shape, groups, window, **uniform)
    kernel = await gpu.kernel("groupnorm", "partial_moments", {"CT": ct, "LANES": LANES, "CG": c // groups})
    gpu.dispatch(kernel, [x, None, None, None, partials, None, None], (window.height, -(-c // ct), b), data)
    return data


async def _group_moments(gpu, partials, moments, groups: int, batch: int, data: bytes) -> None:
    kernel = await gpu.kernel("groupnorm", "group_moments", {"WG": REDUCE_WORKGROUP})
    gpu.dispatch(kernel, [None, None, None, None, partials, moments, None], (groups, batch), data)


def whole_group_fits(batch: int, values: int, groups: int) -> bool:
    """Whether group_norm takes one workgroup a group for `batch` maps of `groups` groups of `values` values each."""
    share = min(1.0, batch * groups / WHOLE_GROUP_WORKGROUPS)
    return values <= WHOLE_GROUP_MAX_VALUES * share * share


async def group_norm(gpu, x, gamma, beta, out, stats, groups: int, eps: float, silu: bool = False,
                     whole_group: bool | None = None) -> None:
    """out = GroupNorm(x) (then SiLU if `silu`) for x (B, H, W, C) f32, out shaped as x f32 or f16 (OUT_KERNELS);
    gamma, beta (C) f32 or f16; stats (B, G, 2) f32 receives (mean, rstd). whole_group: one workgroup a group in
    one dispatch, or the passes over partial moments (default: whole_group_fits)."""
    b, h, w, c = _check(x, groups, gamma=gamma, beta=beta, out=out, stats=stats)
    if whole_group if whole_group is not None else whole_group_fits(b, h * w * c // groups, groups):
        limit = min(gpu.caps.limits["maxComputeInvocationsPerWorkgroup"], gpu.caps.limits["maxComputeWorkgroupSizeX"])
        overrides = {"WG": min(WHOLE_GROUP_WORKGROUP, 1 << (limit.bit_length() - 1)), "CG": c // groups,
                     "SILU": int(silu), "F16_WEIGHTS": int(gamma.dtype == "f16")}
        kernel = await gpu.kernel(OUT_KERNELS[out.dtype], "whole_group", overrides)
        gpu.dispatch(kernel, [x, gamma, beta, stats, None, None, out], (groups, b),
                     _uniform(x.shape, groups, _window(x, None), eps=eps))
        return
    partials = gpu.tensor(partials_shape(x.shape, groups), "f32", f"{x.label}.norm_partials")
    data = await _partial_moments(gpu, x, partials, groups, _window(x, None), eps=eps)
    ct = group_tile(c, groups)
    group_count = ct // (c // groups)
    if h * group_count <= FUSED_PARTIALS_PER_THREAD * ct * LANES:
        segment = 1 << ((ct * LANES // group_count).bit_length() - 1)  # threads a group's partials are summed by
        overrides = {"CT": ct, "LANES": LANES, "CG": c // groups, "SEGMENT": segment, "SILU": int(silu),
                     "F16_WEIGHTS": int(gamma.dtype == "f16")}
        kernel = await gpu.kernel(OUT_KERNELS[out.dtype], "normalize", overrides)
        gpu.dispatch(kernel, [x, gamma, beta, stats, partials, None, out], (h, -(-c // ct), b), data)
    else:
        moments = gpu.tensor((b, groups, 3), "f32", f"{x.label}.norm_moments")
        await _group_moments(gpu, partials, moments, groups, b, data)
        await finalize(gpu, moments, stats, eps)
        await apply(gpu, x, stats, gamma, beta, out, groups, silu)
        gpu.free(moments)
    gpu.free(partials)


async def accumulate_moments(gpu, x, moments, partials, groups: int, window: Window | None = None,
                             accumulate: bool = False) -> None:
    """moments (B, G, 3) f32 = (count, mean, M2) of the `window` of x (default: all of it); with `accumulate`,
    merged into the moments already there. `partials` is scratch of at least `partials_shape` f32 values."""
    _check(x, groups, moments=moments)
    data = await _partial_moments(gpu, x, partials, groups, _window(x, window), accumulate=accumulate)
    await _group_moments(gpu, partials, moments, groups, x.shape[0], data)


async def finalize(gpu, moments, stats, eps: float) -> None:
    """stats (B, G, 2) = (mean, 1/sqrt(M2/count + eps)) from moments (B, G, 3)."""
    b, groups, _ = moments.shape
    if tuple(stats.shape) != (b, groups, 2):
        raise GpuError(f"group norm: stats {stats.label} has shape {stats.shape}; expected {(b, groups, 2)}")
    kernel = await gpu.kernel("groupnorm", "finalize", {"WG": REDUCE_WORKGROUP})
    gpu.dispatch(kernel, [None, None, None, stats, None, moments, None], (-(-b * groups // REDUCE_WORKGROUP), 1, 1),
                 pack(GroupNorm(batch=b, groups=groups, eps=eps)))


async def apply(gpu, x, stats, gamma, beta, out, groups: int, silu: bool = False) -> None:
    """out = (x - mean) * rstd * gamma + beta (then SiLU if `silu`) with (mean, rstd) from stats (B, G, 2)."""
    b, h, _, c = _check(x, groups, gamma=gamma, beta=beta, out=out, stats=stats)
    overrides = {"CT": CHANNELS_PER_WORKGROUP, "LANES": LANES, "SILU": int(silu),
                 "F16_WEIGHTS": int(gamma.dtype == "f16")}
    kernel = await gpu.kernel(OUT_KERNELS[out.dtype], "apply", overrides)
    gpu.dispatch(kernel, [x, gamma, beta, stats, None, None, out], (h, -(-c // CHANNELS_PER_WORKGROUP), b),
                 _uniform(x.shape, groups, _window(x, None)))
