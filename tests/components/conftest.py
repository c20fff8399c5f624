"""Components against diffusers on seeded tiny models (native backend): weights go from a torch state_dict
straight to GPU tensors (the converter's own path is tested in tests/unit/test_convert.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from doppler.config.parse import parse
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


def upload_state_dict(gpu, state_dict, name: str, dtype: str = "f32") -> ComponentWeights:
    weights = ComponentWeights(name, {})
    for key, value in state_dict.items():
        array = value.detach().cpu().numpy().astype(np.float16 if dtype == "f16" else np.float32)
        t = gpu.tensor(array.shape, dtype, f"{name}.{key}")
        gpu.upload(t, array.tobytes())
        weights.tensors[key] = t
        weights.allocations.append(t.alloc)
    return weights


@pytest.fixture
def run(event_loop_runner, native_gpu):
    """run(async_fn) -> its result, on the session's native GPU."""
    return lambda fn: event_loop_runner(fn(native_gpu))


def nhwc(t):
    """A torch NCHW tensor as a numpy NHWC array (Doppler's layout)."""
    return t.permute(0, 2, 3, 1).contiguous().numpy()


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


def unet_on_gpu(reference_model, config: dict, x, ctx, timestep: float):
    """An async fn(gpu) running our UNet with the reference's weights on NCHW `x`; returns f32 NHWC values."""
    from doppler.inference.diffusion.unet import UNet2DConditionModel
    from doppler.manifest import architectures as arch

    async def go(gpu):
        weights = upload_state_dict(gpu, reference_model.state_dict(), "unet")
        model = UNet2DConditionModel(weights, architecture(arch.UNet2DConditionModel, config))
        await weights.apply_layouts(gpu)
        sample = gpu.tensor(nhwc(x).shape, "f32", "sample")
        gpu.upload(sample, nhwc(x).astype(np.float32).tobytes())
        context = gpu.tensor(tuple(ctx.shape), "f32", "context")
        gpu.upload(context, ctx.numpy().astype(np.float32).tobytes())
        t = gpu.tensor((1,), "f32", "timestep")
        gpu.upload(t, np.float32(timestep).tobytes())
        out = await model(gpu, sample, t, context)
        got = np.frombuffer(await gpu.read(out), np.float32)
        gpu.free(sample, context, t, out)
        weights.release(gpu)
        return got

    return go
