"""SD 1.5's real widths (channels, heads, head dims 40/80/160, CLIP-L's 768/12 heads, the VAE's 128..512) with
random weights at reduced depth and resolution, against diffusers/transformers (native backend). The tiny-model
tests cover the wiring; these cover the sizes the tiny model cannot reach."""

import numpy as np
import pytest
import torch

from conftest import nhwc, text_encoder_on_gpu, unet_on_gpu
from reference import assert_close

pytestmark = [pytest.mark.native, pytest.mark.slow]

CLIP_L_ONE_LAYER = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=1,
                        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                        layer_norm_eps=1e-5)
SD15_UNET_SHALLOW = dict(in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=1,
                         down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                         up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                         mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=768, attention_head_dim=8,
                         norm_num_groups=32, norm_eps=1e-5, sample_size=64, flip_sin_to_cos=True, freq_shift=0,
                         act_fn="silu")


def _scaled(model, gain: float = 1.0):
    """Random weights that keep activations of order 1 through a deep net (the classes' own init does not)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0, gain / np.sqrt(np.prod(p.shape[1:])))
    return model


def test_full_width_clip_layer(run):
    from transformers import CLIPTextConfig, CLIPTextModel as Reference

    ref = _scaled(Reference(CLIPTextConfig(**CLIP_L_ONE_LAYER)).eval())
    ids = torch.randint(0, 49408, (1, 77))
    with torch.no_grad():
        want = ref(ids).last_hidden_state.double().numpy()

    assert_close(run(text_encoder_on_gpu(ref, CLIP_L_ONE_LAYER, ids)), want, "f32", "CLIP-L width")


def test_full_width_unet(run):
    from diffusers import UNet2DConditionModel as Reference

    ref = _scaled(Reference(**SD15_UNET_SHALLOW).eval())
    x = torch.randn(1, 4, 8, 8)  # batch 1 keeps it affordable on lavapipe; batch 2 is the tiny tests' and e2e's
    ctx = torch.randn(1, 77, 768)
    with torch.no_grad():
        want = nhwc(ref(x, torch.tensor([500.0]), encoder_hidden_states=ctx).sample.double())

    assert_close(run(unet_on_gpu(ref, SD15_UNET_SHALLOW, x, ctx, 500.0)), want, "f32", "SD 1.5-width UNet")
