"""Components against diffusers on seeded tiny models (native backend): weights go from a torch state_dict
straight to GPU tensors (the converter's own path is tested in tests/unit/test_convert.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from doppler.config.parse import parse
from doppler.convert import random_model, writer
from doppler.convert.presets import PRESETS
from doppler.loader.weights import ComponentWeights

TINY_CLIP = dict(vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5)
TINY_UNET = dict(in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                 mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=32, attention_head_dim=4,
                 norm_num_groups=32, norm_eps=1e-5, sample_size=8, flip_sin_to_cos=True, freq_shift=0, act_fn="silu")
TINY_VAE = dict(latent_channels=4, out_channels=3, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=32,
                scaling_factor=0.18215, sample_size=32, up_block_types=("UpDecoderBlock2D",) * 2, act_fn="silu")


def architecture(cls, config: dict):
    return parse(cls, json.loads(json.dumps(config)), "test")  # as from a manifest: JSON arrays, not tuples


def upload_state_dict(gpu, state_dict, name: str, dtype: str = "f32", one_buffer: bool = False) -> ComponentWeights:
    """The state dict as GPU tensors: each its own buffer, or (`one_buffer`) views of one buffer in the state dict's
    order at 256-byte aligned offsets, as the loader places a shard's tensors (layers may then fuse weights that
    lie side by side)."""
    from doppler.gpu.tensor import Tensor, storage_bytes

    weights = ComponentWeights(name, {})
    arrays = {key: value.detach().cpu().numpy().astype(np.float16 if dtype == "f16" else np.float32)
              for key, value in state_dict.items()}
    if not one_buffer:
        for key, array in arrays.items():
            t = gpu.tensor(array.shape, dtype, f"{name}.{key}")
            gpu.upload(t, array.tobytes())
            weights.tensors[key] = t
            weights.allocations.append(t.alloc)
        return weights
    offsets, end = {}, 0
    for key, array in arrays.items():
        offsets[key] = end
        end += -(-storage_bytes(array.shape, dtype) // 256) * 256
    alloc = gpu.pool.acquire(end, f"{name}.shard0", exact=True)
    weights.allocations.append(alloc)
    for key, array in arrays.items():
        t = Tensor(array.shape, dtype, alloc, offsets[key])
        gpu.upload(t, array.tobytes())
        weights.tensors[key] = t
    return weights


@pytest.fixture
def run(event_loop_runner, native_gpu):
    """run(async_fn) -> its result, on the session's native GPU."""
    return lambda fn: event_loop_runner(fn(native_gpu))


def nhwc(t):
    """A torch NCHW tensor as a numpy NHWC array (Doppler's layout)."""
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def _walk(node, seen=None):
    """Every object in a model's attribute tree, through lists and tuples."""
    seen = set() if seen is None else seen
    if isinstance(node, (list, tuple)):
        for child in node:
            yield from _walk(child, seen)
        return
    if id(node) in seen or not hasattr(node, "__dict__"):
        return
    seen.add(id(node))
    yield node
    for value in vars(node).values():
        yield from _walk(value, seen)


def text_encoder_on_gpu(reference_model, config: dict, ids, dtype: str = "f32"):
    """An async fn(gpu) running our CLIPTextModel with the reference's weights on `ids`; returns f32 values."""
    from doppler.inference.diffusion.text_encoder import CLIPTextModel
    from doppler.manifest import architectures as arch

    async def go(gpu):
        # transformers >= 5 drops the `text_model.` level that checkpoints (and manifests) keep
        state = {k if k.startswith("text_model.") else f"text_model.{k}": v
                 for k, v in reference_model.state_dict().items()}
        weights = upload_state_dict(gpu, state, "text_encoder", dtype)
        model = CLIPTextModel(weights, architecture(arch.CLIPTextModel, config))
        t = gpu.tensor(tuple(ids.shape), "u32", "ids")
        gpu.upload(t, ids.numpy().astype(np.uint32).tobytes())
        out = await model(gpu, t)
        got = np.frombuffer(await gpu.read(out), np.float32)
        gpu.free(t, out)
        weights.release(gpu)
        return got

    return go


def unet_on_gpu(reference_model, config: dict, x, ctx, timestep: float, one_buffer: bool = False,
                made_before: bool = False):
    """An async fn(gpu) running our UNet with the reference's weights on NCHW `x`; returns f32 NHWC values.
    `one_buffer`: the weights in one buffer as the loader places them, where every attention's projections fuse.
    `made_before`: what a pipeline makes once an image made first and passed to the call, as its steps take them:
    the cross-attentions' keys and values (cross_keys_values), and the time projections (the middle row of a
    time_table over three timesteps)."""
    from doppler.inference.diffusion.unet import Attention, UNet2DConditionModel
    from doppler.manifest import architectures as arch

    async def go(gpu):
        weights = upload_state_dict(gpu, reference_model.state_dict(), "unet", one_buffer=one_buffer)
        model = UNet2DConditionModel(weights, architecture(arch.UNet2DConditionModel, config))
        attentions = [a for a in _walk(model) if isinstance(a, Attention)]
        fused = [a.kv is not None and (a.qkv is not None or a.path.endswith("attn2")) for a in attentions]
        assert attentions and fused == [one_buffer] * len(attentions)  # self-attention: q, k, v; cross: k, v
        await weights.apply_layouts(gpu)
        sample = gpu.tensor(nhwc(x).shape, "f32", "sample")
        gpu.upload(sample, nhwc(x).astype(np.float32).tobytes())
        context = gpu.tensor(tuple(ctx.shape), "f32", "context")
        gpu.upload(context, ctx.numpy().astype(np.float32).tobytes())
        t = gpu.tensor((1,), "f32", "timestep")
        gpu.upload(t, np.float32(timestep).tobytes())
        made, held, rows = {}, [], None
        if made_before:
            made, held = await model.cross_keys_values(gpu, context)
            assert len(made) == sum(1 for a in _walk(model) if isinstance(a, Attention) and a.path.endswith("attn2"))
            timesteps = gpu.tensor((3,), "f32", "timesteps")
            gpu.upload(timesteps, np.float32([timestep + 97.0, timestep, timestep - 311.0]).tobytes())
            table = await model.time_table(gpu, timesteps)
            row = gpu.tensor((1, table.shape[1]), "f32", "time_rows")
            gpu.copy(table, row, row.nbytes, src_offset=row.nbytes)
            rows = model.time_row_views(row)
            held += [timesteps, table, row]
        out = await model(gpu, sample, t, context, cross_kv=made, time_rows=rows)
        got = np.frombuffer(await gpu.read(out), np.float32)
        gpu.free(sample, context, t, out, *held)
        weights.release(gpu)
        return got

    return go


@pytest.fixture(scope="session")
def sd15_folder(tmp_path_factory):
    """SD 1.5 converted from zeros with its shards counted (sizes and layout as written) but left empty."""
    out = tmp_path_factory.mktemp("sd15") / "model"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(random_model, "random_tensor", lambda seed, component, p, init: np.zeros(p.shape, np.float32))
        patch.setattr(writer._ShardWriter, "_write", lambda self, data: setattr(self, "size", self.size + len(data)))
        source = random_model.random_source(PRESETS["sd15"], seed=0)
        writer.write_model(source, out, dtype="f16", model_id="sd15-counted", name="SD 1.5 (counted)")
    return out
