"""The tensors of each component, from its architecture numbers alone: diffusers names, shapes, original LDM names.

One walk per component lists every tensor the page needs, in the reference class's layout:

    linear   weight [out, in] (+ bias [out])           y = x W^T + b
    conv     weight [out, in, k, k] (+ bias [out])
    norm     weight, bias [C]                           GroupNorm / LayerNorm gamma, beta
    embedding weight [rows, C]

Each tensor also carries its key in an original single-file (LDM / CompVis) checkpoint, as diffusers'
`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint` and `convert_ldm_clip_checkpoint` map them. Only the
VAE's mid-block attention differs in shape there: its q, k, v and proj_out are 1x1 convs [C, C, 1, 1] in LDM and
linears [C, C] in diffusers.

UNet levels (n = len(block_out_channels), c_i = block_out_channels[i], L = layers_per_block, T = 4 c_0):
    down level i: L resnets (c_{i-1} -> c_i, then c_i -> c_i) each followed by a transformer if cross-attention;
                  a stride-2 conv downsampler unless last.  LDM: input_blocks.k.{0,1}, the downsampler input_blocks.k.0.op
    up level i (channels reversed, r_i = c_{n-1-i}): L + 1 resnets whose input is concatenated with the skip of the
                  matching down layer; an upsampler conv unless last.  LDM: output_blocks.k.{0,1,1|2}
The VAE decoder mirrors this without time embedding or skips; its LDM levels count from the lowest resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

from doppler.manifest.architectures import AutoencoderKL, CLIPTextModel, UNet2DConditionModel

COMPONENTS = ("text_encoder", "unet", "vae")
# The UNet's time embedding width, in units of block_out_channels[0] (diffusers: time_embed_dim = c_0 * 4).
TIME_EMBED_MULT = 4
# GEGLU feed-forward of the UNet transformer blocks: hidden width = FF_MULT * C, and its input projection
# produces the value and the gate together (2 * hidden).
FF_MULT = 4
GEGLU_HALVES = 2
CONV_KERNEL = 3
# Prefixes of each component's keys in an original single-file checkpoint.
LDM_PREFIX = {
    "text_encoder": "cond_stage_model.transformer.",
    "unet": "model.diffusion_model.",
    "vae": "first_stage_model.",
}


@dataclass(frozen=True)
class Param:
    """One tensor: its diffusers name and shape, what kind of parameter it is, and its LDM key and shape."""

    name: str
    shape: tuple[int, ...]
    kind: str  # "weight" (linear or conv), "bias", "norm_weight", "norm_bias", "embedding"
    ldm: str | None  # full key in an original single file; None where that layout has no such tensor
    ldm_shape: tuple[int, ...]


class _Walk:
    """Collects the Params of one component, in layer order."""

    def __init__(self, component: str):
        self.prefix = LDM_PREFIX[component]
        self.params: list[Param] = []

    def add(self, name, shape, kind, ldm, ldm_shape=None):
        key = None if ldm is None else self.prefix + ldm
        self.params.append(Param(name, tuple(shape), kind, key, tuple(ldm_shape or shape)))

    def linear(self, name, ldm, out, inp, bias=True, ldm_shape=None):
        self.add(f"{name}.weight", (out, inp), "weight", ldm and f"{ldm}.weight", ldm_shape)
        if bias:
            self.add(f"{name}.bias", (out,), "bias", ldm and f"{ldm}.bias")

    def conv(self, name, ldm, out, inp, kernel):
        self.add(f"{name}.weight", (out, inp, kernel, kernel), "weight", f"{ldm}.weight")
        self.add(f"{name}.bias", (out,), "bias", f"{ldm}.bias")

    def norm(self, name, ldm, channels):
        self.add(f"{name}.weight", (channels,), "norm_weight", f"{ldm}.weight")
        self.add(f"{name}.bias", (channels,), "norm_bias", f"{ldm}.bias")


def params(component: str, architecture) -> tuple[Param, ...]:
    """Every tensor of `component` ("text_encoder", "unet", "vae") the page needs, for these numbers."""
    walk = _Walk(component)
    {"text_encoder": _text_encoder, "unet": _unet, "vae": _vae_decoder}[component](walk, architecture)
    return tuple(walk.params)


def expected_tensors(component: str, architecture) -> dict[str, tuple[int, ...]]:
    """{diffusers name: shape} of every tensor of `component` the page needs (the converter's check and the
    source of `--random`)."""
    return {p.name: p.shape for p in params(component, architecture)}


def _text_encoder(w: _Walk, a: CLIPTextModel):
    h = a.hidden_size
    w.add("text_model.embeddings.token_embedding.weight", (a.vocab_size, h), "embedding",
          "text_model.embeddings.token_embedding.weight")
    w.add("text_model.embeddings.position_embedding.weight", (a.max_position_embeddings, h), "embedding",
          "text_model.embeddings.position_embedding.weight")
    for i in range(a.num_hidden_layers):
        layer = f"text_model.encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w.linear(f"{layer}.self_attn.{proj}", f"{layer}.self_attn.{proj}", h, h)
        w.norm(f"{layer}.layer_norm1", f"{layer}.layer_norm1", h)
        w.linear(f"{layer}.mlp.fc1", f"{layer}.mlp.fc1", a.intermediate_size, h)
        w.linear(f"{layer}.mlp.fc2", f"{layer}.mlp.fc2", h, a.intermediate_size)
        w.norm(f"{layer}.layer_norm2", f"{layer}.layer_norm2", h)
    w.norm("text_model.final_layer_norm", "text_model.final_layer_norm", h)
    if a.projection_dim is not None:
        # CLIPTextModelWithProjection only; SD 1.x single files have no projection.
        w.linear("text_projection", None, a.projection_dim, h, bias=False)


def _unet(w: _Walk, a: UNet2DConditionModel):
    ch = a.block_out_channels
    levels = len(ch)
    temb = ch[0] * TIME_EMBED_MULT
    w.conv("conv_in", "input_blocks.0.0", ch[0], a.in_channels, CONV_KERNEL)
    w.linear("time_embedding.linear_1", "time_embed.0", temb, ch[0])
    w.linear("time_embedding.linear_2", "time_embed.2", temb, temb)
    if a.time_cond_proj_dim is not None:
        # LCM-distilled UNets add a projected guidance embedding to the sinusoidal one (width c_0) before linear_1;
        # original single files have no such layer.
        w.linear("time_embedding.cond_proj", None, ch[0], a.time_cond_proj_dim, bias=False)

    block, out = 1, ch[0]
    for i, kind in enumerate(a.down_block_types):
        inp, out = out, ch[i]
        for j in range(a.layers_per_block):
            _unet_resnet(w, f"down_blocks.{i}.resnets.{j}", f"input_blocks.{block}.0", inp if j == 0 else out, out,
                         temb)
            if kind == "CrossAttnDownBlock2D":
                _transformer(w, f"down_blocks.{i}.attentions.{j}", f"input_blocks.{block}.1", out, a)
            block += 1
        if i < levels - 1:
            w.conv(f"down_blocks.{i}.downsamplers.0.conv", f"input_blocks.{block}.0.op", out, out, CONV_KERNEL)
            block += 1

    mid = ch[-1]
    _unet_resnet(w, "mid_block.resnets.0", "middle_block.0", mid, mid, temb)
    _transformer(w, "mid_block.attentions.0", "middle_block.1", mid, a)
    _unet_resnet(w, "mid_block.resnets.1", "middle_block.2", mid, mid, temb)

    reversed_ch = ch[::-1]
    block, out = 0, reversed_ch[0]
    for i, kind in enumerate(a.up_block_types):
        previous, out = out, reversed_ch[i]
        skip_of_last = reversed_ch[min(i + 1, levels - 1)]
        attention = kind == "CrossAttnUpBlock2D"
        for j in range(a.layers_per_block + 1):
            skip = skip_of_last if j == a.layers_per_block else out
            inp = (previous if j == 0 else out) + skip
            _unet_resnet(w, f"up_blocks.{i}.resnets.{j}", f"output_blocks.{block}.0", inp, out, temb)
            if attention:
                _transformer(w, f"up_blocks.{i}.attentions.{j}", f"output_blocks.{block}.1", out, a)
            if j == a.layers_per_block and i < levels - 1:
                position = 2 if attention else 1
                w.conv(f"up_blocks.{i}.upsamplers.0.conv", f"output_blocks.{block}.{position}.conv", out, out,
                       CONV_KERNEL)
            block += 1

    w.norm("conv_norm_out", "out.0", ch[0])
    w.conv("conv_out", "out.2", a.out_channels, ch[0], CONV_KERNEL)


def _unet_resnet(w: _Walk, name: str, ldm: str, inp: int, out: int, temb: int):
    w.norm(f"{name}.norm1", f"{ldm}.in_layers.0", inp)
    w.conv(f"{name}.conv1", f"{ldm}.in_layers.2", out, inp, CONV_KERNEL)
    w.linear(f"{name}.time_emb_proj", f"{ldm}.emb_layers.1", out, temb)
    w.norm(f"{name}.norm2", f"{ldm}.out_layers.0", out)
    w.conv(f"{name}.conv2", f"{ldm}.out_layers.3", out, out, CONV_KERNEL)
    if inp != out:
        w.conv(f"{name}.conv_shortcut", f"{ldm}.skip_connection", out, inp, 1)


def _transformer(w: _Walk, name: str, ldm: str, c: int, a: UNet2DConditionModel):
    """Transformer2DModel (LDM SpatialTransformer): the same keys below the block prefix in both layouts."""

    def both(suffix):
        return f"{name}.{suffix}", f"{ldm}.{suffix}"

    def projection(suffix):
        if a.use_linear_projection:
            w.linear(*both(suffix), c, c)
        else:
            w.conv(*both(suffix), c, c, 1)

    w.norm(*both("norm"), c)
    projection("proj_in")
    block = "transformer_blocks.0"
    for attn, context in (("attn1", c), ("attn2", a.cross_attention_dim)):
        w.norm(*both(f"{block}.norm{attn[-1]}"), c)
        w.linear(*both(f"{block}.{attn}.to_q"), c, c, bias=False)
        w.linear(*both(f"{block}.{attn}.to_k"), c, context, bias=False)
        w.linear(*both(f"{block}.{attn}.to_v"), c, context, bias=False)
        w.linear(*both(f"{block}.{attn}.to_out.0"), c, c)
    w.norm(*both(f"{block}.norm3"), c)
    w.linear(*both(f"{block}.ff.net.0.proj"), GEGLU_HALVES * FF_MULT * c, c)
    w.linear(*both(f"{block}.ff.net.2"), c, FF_MULT * c)
    projection("proj_out")


def _vae_decoder(w: _Walk, a: AutoencoderKL):
    ch = a.block_out_channels
    levels = len(ch)
    latent = a.latent_channels
    w.conv("post_quant_conv", "post_quant_conv", latent, latent, 1)
    w.conv("decoder.conv_in", "decoder.conv_in", ch[-1], latent, CONV_KERNEL)
    mid = ch[-1]
    _vae_resnet(w, "decoder.mid_block.resnets.0", "decoder.mid.block_1", mid, mid)
    _vae_attention(w, "decoder.mid_block.attentions.0", "decoder.mid.attn_1", mid)
    _vae_resnet(w, "decoder.mid_block.resnets.1", "decoder.mid.block_2", mid, mid)
    reversed_ch = ch[::-1]
    out = reversed_ch[0]
    for i in range(levels):
        previous, out = out, reversed_ch[i]
        ldm = f"decoder.up.{levels - 1 - i}"
        for j in range(a.layers_per_block + 1):
            _vae_resnet(w, f"decoder.up_blocks.{i}.resnets.{j}", f"{ldm}.block.{j}", previous if j == 0 else out, out)
        if i < levels - 1:
            w.conv(f"decoder.up_blocks.{i}.upsamplers.0.conv", f"{ldm}.upsample.conv", out, out, CONV_KERNEL)
    w.norm("decoder.conv_norm_out", "decoder.norm_out", ch[0])
    w.conv("decoder.conv_out", "decoder.conv_out", a.out_channels, ch[0], CONV_KERNEL)


def _vae_resnet(w: _Walk, name: str, ldm: str, inp: int, out: int):
    w.norm(f"{name}.norm1", f"{ldm}.norm1", inp)
    w.conv(f"{name}.conv1", f"{ldm}.conv1", out, inp, CONV_KERNEL)
    w.norm(f"{name}.norm2", f"{ldm}.norm2", out)
    w.conv(f"{name}.conv2", f"{ldm}.conv2", out, out, CONV_KERNEL)
    if inp != out:
        w.conv(f"{name}.conv_shortcut", f"{ldm}.nin_shortcut", out, inp, 1)


def _vae_attention(w: _Walk, name: str, ldm: str, c: int):
    w.norm(f"{name}.group_norm", f"{ldm}.norm", c)
    for ours, theirs in (("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
        w.linear(f"{name}.{ours}", f"{ldm}.{theirs}", c, c, ldm_shape=(c, c, 1, 1))
