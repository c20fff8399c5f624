"""Text encoder, UNet and VAE decoder against diffusers/transformers on seeded tiny models (native backend)."""

import numpy as np
import pytest
import torch

from conftest import (TINY_CLIP, TINY_UNET, TINY_VAE, architecture, nhwc, text_encoder_on_gpu, unet_on_gpu,
                      upload_state_dict)
from doppler.manifest import architectures as arch
from reference import assert_close

pytestmark = pytest.mark.native


@pytest.mark.parametrize("dtype,path", [("f32", "f32"), ("f16", "f16w")])
def test_text_encoder_matches_transformers(run, dtype, path):
    from transformers import CLIPTextConfig, CLIPTextModel as Reference

    torch.manual_seed(0)
    ref = Reference(CLIPTextConfig(**TINY_CLIP)).eval()
    if dtype == "f16":
        ref = ref.half().float()  # the reference sees the same f16-rounded weights
    ids = torch.randint(0, TINY_CLIP["vocab_size"], (2, 77))
    with torch.no_grad():
        want = ref(ids).last_hidden_state.double().numpy()

    assert_close(run(text_encoder_on_gpu(ref, TINY_CLIP, ids, dtype)), want, path, "text encoder")


@pytest.mark.parametrize("conv", ["winograd-2x2", "winograd-4x4", "implicit-gemm"])
@pytest.mark.parametrize("size", [(8, 8), (6, 10)])
def test_unet_matches_diffusers(run, monkeypatch, size, conv):
    from diffusers import UNet2DConditionModel as Reference

    from doppler.inference.diffusion import nn

    if conv == "implicit-gemm":  # every 3x3 conv through conv2d, as SD 1.5's 8x8 and largest maps run
        monkeypatch.setattr(nn, "WINOGRAD_MAX_PIXELS", 0)
    else:  # every stride-1 3x3 conv through Winograd, the tiny maps too, all F(2x2) or all F(4x4)
        monkeypatch.setattr(nn, "WINOGRAD_MIN_PIXELS", 0)
        monkeypatch.setattr(nn, "WINOGRAD_F4_MIN_TILES", 0 if conv == "winograd-4x4" else 1 << 30)

    torch.manual_seed(1)
    ref = Reference(**{k: v for k, v in TINY_UNET.items()}).eval()
    x = torch.randn(2, 4, *size)
    ctx = torch.randn(2, 77, TINY_UNET["cross_attention_dim"])
    t = 801.0
    with torch.no_grad():
        want = nhwc(ref(x, torch.tensor([t, t]), encoder_hidden_states=ctx).sample.double())

    # 8x8 with the weights in one buffer, as loaded: the attention projections fuse; 6x10 with the cross-attentions'
    # keys and values and the time projections made before the call, as a pipeline's steps take them
    got = run(unet_on_gpu(ref, TINY_UNET, x, ctx, t, one_buffer=size == (8, 8), made_before=size == (6, 10)))
    assert_close(got, want, "f32", "unet")


@pytest.mark.parametrize("recorded", [False, True], ids=["eager", "recorded-winograd"])
@pytest.mark.parametrize("score_bytes", [None, 0], ids=["attention-by-gemms", "attention-flash-kernel"])
def test_vae_decoder_matches_diffusers(run, monkeypatch, score_bytes, recorded):
    from diffusers import AutoencoderKL as Reference

    from doppler.inference.diffusion import nn, vae
    from doppler.inference.diffusion.vae import AutoencoderKLDecoder

    if score_bytes is not None:  # no score matrix fits: the mid-block's attention takes the flash kernel
        monkeypatch.setattr(vae, "MAX_SCORE_BYTES", score_bytes)
    if recorded:  # eagerly no 3x3 conv would take Winograd; in a recorded plan every stride-1 one does, F(4x4)
        for name in ("WINOGRAD_MIN_PIXELS", "WINOGRAD_MAX_PIXELS", "WINOGRAD_RECORDED_MIN_CHANNELS",
                     "WINOGRAD_F4_MIN_TILES"):
            monkeypatch.setattr(nn, name, 0)
    torch.manual_seed(2)
    cfg = {k: v for k, v in TINY_VAE.items() if k not in ("scaling_factor", "sample_size", "up_block_types", "act_fn")}
    ref = Reference(**cfg, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=TINY_VAE["up_block_types"]).eval()
    z = torch.randn(1, 4, 5, 6)
    with torch.no_grad():
        want = nhwc(ref.decode(z / TINY_VAE["scaling_factor"]).sample.double())

    async def go(gpu):
        state = {k: v for k, v in ref.state_dict().items() if not k.startswith(("encoder.", "quant_conv."))}
        weights = upload_state_dict(gpu, state, "vae")
        model = AutoencoderKLDecoder(weights, architecture(arch.AutoencoderKL, TINY_VAE))
        await weights.apply_layouts(gpu)
        latents = gpu.tensor((1, 5, 6, 4), "f32", "latents")
        gpu.upload(latents, nhwc(z).astype(np.float32).tobytes())
        if recorded:
            with gpu.record("vae", borrow=False) as plan:  # the decoder makes its output inside
                out = await model(gpu, latents)
            winograd_convs = sum(k.startswith("winograd_output.wgsl") and "TILE=4" in k for k in plan.kernels)
            assert winograd_convs == 15, plan.kernels  # the tiny decoder's stride-1 3x3 convs, conv_in to conv_out
            plan.replay()
        else:
            out = await model(gpu, latents)
        got = np.frombuffer(await gpu.read(out), np.float32)
        gpu.free(latents, out)
        if recorded:
            plan.destroy()
        weights.release(gpu)
        return got

    assert_close(run(go), want, "f32", "vae decode")
