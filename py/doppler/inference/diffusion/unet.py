"""SD 1.5's UNet2DConditionModel (diffusers), NHWC, from the manifest's architecture numbers.

    emb = linear_2(silu(linear_1(timestep_embedding(t) [+ cond_proj(w_embedding)])))
    h = conv_in(x); skips = [h]
    down blocks: (resnet(h, emb) [-> transformer(h, text)]) x layers, then a stride-2 conv except the last block
    mid: resnet -> transformer -> resnet
    up blocks: (resnet(concat(h, skips.pop()), emb) [-> transformer]) x (layers + 1), then nearest-2x + conv
    out = conv_out(silu(groupnorm(h)))
Resnet: conv2(silu(gn2(conv1(silu(gn1(x))) + time_emb_proj(silu(emb))))) + shortcut(x).
Transformer2DModel: proj_out(blocks(proj_in(gn(x)))) + x, blocks = self-attn, cross-attn, GEGLU feed-forward,
each pre-LayerNorm with a residual. SD's `attention_head_dim` (8) is the number of heads (diffusers' naming).
"""

from __future__ import annotations

from ...gpu.tensor import DTYPE_BYTES, OFFSET_ALIGNMENT, Tensor
from ...ops import concat, elementwise, sampling
from .nn import (Conv2d, GroupNorm, LayerNorm, Linear, geglu, own_statistics, projections, projections_fit,
                 scaled_dot_product_attention, side_by_side)

LAYER_NORM_EPS = 1e-5  # diffusers' BasicTransformerBlock default
TRANSFORMER_NORM_EPS = 1e-6  # Transformer2DModel's GroupNorm


class Attention:
    def __init__(self, weights, path: str, heads: int):
        self.path = path
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (Linear(weights, f"{path}.{n}", bias=False) for n in ("to_q", "to_k", "to_v"))
        self.to_out = Linear(weights, f"{path}.to_out.0")
        # Projections that share an input run as one batched GEMM where their weights lie side by side: one dispatch
        # of 3 (2) times the tiles, which fills a big GPU where each alone would split K.
        self.qkv = side_by_side(self.to_q.weight, self.to_k.weight, self.to_v.weight)
        self.kv = side_by_side(self.to_k.weight, self.to_v.weight)

    async def keys_values(self, gpu, source) -> tuple[list, tuple]:
        """K and V of `source` (x, or the cross-attention's context): (the tensors to free, (k, v))."""
        if projections_fit(source, self.kv):
            both, (k, v) = await projections(gpu, source, self.kv, f"{self.path}.kv")
            return [both], (k, v)
        k, v = await self.to_k(gpu, source), await self.to_v(gpu, source)
        return [k, v], (k, v)

    async def __call__(self, gpu, x, residual, context=None, kv=None):
        """Self-attention over x, or cross-attention over `context` or over its K and V already made (`kv`, from
        keys_values: they depend on the context alone)."""
        if context is None and kv is None and projections_fit(x, self.qkv):
            qkv, (q, k, v) = await projections(gpu, x, self.qkv, f"{self.path}.qkv")
            made = [qkv]
        else:
            q = await self.to_q(gpu, x)
            made = [q]
            if kv is None:
                held, kv = await self.keys_values(gpu, x if context is None else context)
                made += held
            k, v = kv
        a = await scaled_dot_product_attention(gpu, q, k, v, self.heads, self.path, feeds_gemms=True)
        gpu.free(*made)
        out = await self.to_out(gpu, a, residual=residual)
        gpu.free(a)
        return out


class BasicTransformerBlock:
    def __init__(self, weights, path: str, heads: int):
        self.path = path
        self.norm1, self.norm2, self.norm3 = (LayerNorm(weights, f"{path}.norm{i}", LAYER_NORM_EPS, feeds_gemms=True)
                                              for i in (1, 2, 3))
        self.attn1 = Attention(weights, f"{path}.attn1", heads)
        self.attn2 = Attention(weights, f"{path}.attn2", heads)
        self.ff_proj = Linear(weights, f"{path}.ff.net.0.proj")
        self.ff_out = Linear(weights, f"{path}.ff.net.2")

    async def __call__(self, gpu, h, context, cross_kv=None):
        """cross_kv: {path: (k, v)} of the cross-attentions over `context`, made before (UNet's cross_keys_values)."""
        x = await self.norm1(gpu, h)
        h1 = await self.attn1(gpu, x, residual=h)
        gpu.free(x)
        x = await self.norm2(gpu, h1)
        kv = cross_kv[self.attn2.path] if cross_kv else None
        h2 = await self.attn2(gpu, x, residual=h1, context=context, kv=kv)
        gpu.free(x, h1)
        x = await self.norm3(gpu, h2)
        p = await self.ff_proj(gpu, x)
        gpu.free(x)
        g = await geglu(gpu, p, f"{self.path}.ff.net.0")
        gpu.free(p)
        out = await self.ff_out(gpu, g, residual=h2)
        gpu.free(g, h2)
        return out


class Transformer2DModel:
    def __init__(self, weights, path: str, heads: int, groups: int):
        self.norm = GroupNorm(weights, f"{path}.norm", groups, TRANSFORMER_NORM_EPS, feeds_gemms=True)
        self.proj_in = Conv2d(weights, f"{path}.proj_in")
        self.blocks = [BasicTransformerBlock(weights, f"{path}.transformer_blocks.0", heads)]
        self.proj_out = Conv2d(weights, f"{path}.proj_out")

    async def __call__(self, gpu, x, context, cross_kv=None):
        b, hh, ww, c = x.shape
        n = await self.norm(gpu, x)
        h = await self.proj_in(gpu, n)
        gpu.free(n)
        tokens = h.reshaped((b, hh * ww, h.shape[-1]))  # NHWC: the tokens are the pixels, no transpose
        for block in self.blocks:
            nxt = await block(gpu, tokens, context, cross_kv)
            gpu.free(tokens)
            tokens = nxt
        out = await self.proj_out(gpu, tokens.reshaped((b, hh, ww, tokens.shape[-1])), residual=x)
        gpu.free(tokens)
        return out


class ResnetBlock2D:
    def __init__(self, weights, path: str, groups: int, eps: float, has_temb: bool = True):
        self.path = path
        self.norm1 = GroupNorm(weights, f"{path}.norm1", groups, eps)
        self.conv1 = Conv2d(weights, f"{path}.conv1")
        self.time_emb_proj = Linear(weights, f"{path}.time_emb_proj") if has_temb else None
        self.norm2 = GroupNorm(weights, f"{path}.norm2", groups, eps)
        self.conv2 = Conv2d(weights, f"{path}.conv2")
        self.conv_shortcut = Conv2d(weights, f"{path}.conv_shortcut") if weights.get(f"{path}.conv_shortcut.weight") else None

    async def __call__(self, gpu, x, norm=own_statistics, time_row=None):
        """`norm(gpu, layer, x, silu)` normalizes with each GroupNorm `layer` (a tiled decode shares statistics).
        time_row: the step's time_emb_proj(silu(emb)) + conv1's bias (1, C) from a row of UNet.time_table (every
        batch row shares the timestep), which conv1 takes as its bias; none where the block has no time embedding."""
        n = await norm(gpu, self.norm1, x, True)
        h = await self.conv1(gpu, n, bias=None if time_row is None else time_row.reshaped((time_row.numel,)))
        gpu.free(n)
        n = await norm(gpu, self.norm2, h, True)
        gpu.free(h)
        shortcut = await self.conv_shortcut(gpu, x) if self.conv_shortcut else x
        out = await self.conv2(gpu, n, residual=shortcut)
        gpu.free(n)
        if shortcut is not x:
            gpu.free(shortcut)
        return out


class UNet2DConditionModel:
    def __init__(self, weights, arch):
        self.arch = arch
        groups, eps = arch.norm_num_groups, arch.norm_eps
        # diffusers: num_attention_heads = attention_head_dim (SD's naming), one number or one per level
        levels = len(arch.block_out_channels)
        heads = arch.attention_head_dim if isinstance(arch.attention_head_dim, tuple) else (arch.attention_head_dim,) * levels
        self.conv_in = Conv2d(weights, "conv_in")
        self.linear_1 = Linear(weights, "time_embedding.linear_1")
        self.linear_2 = Linear(weights, "time_embedding.linear_2")
        self.cond_proj = Linear(weights, "time_embedding.cond_proj", bias=False) if arch.time_cond_proj_dim else None
        channels = list(arch.block_out_channels)

        def transformer(path, level):
            return Transformer2DModel(weights, path, heads[level], groups)

        self.down = []
        for i, kind in enumerate(arch.down_block_types):
            path = f"down_blocks.{i}"
            resnets = [ResnetBlock2D(weights, f"{path}.resnets.{j}", groups, eps) for j in range(arch.layers_per_block)]
            attns = ([transformer(f"{path}.attentions.{j}", i) for j in range(arch.layers_per_block)]
                     if kind.startswith("CrossAttn") else [None] * arch.layers_per_block)
            down = Conv2d(weights, f"{path}.downsamplers.0.conv", stride=2) if i < len(channels) - 1 else None
            self.down.append((resnets, attns, down))
        self.mid = (ResnetBlock2D(weights, "mid_block.resnets.0", groups, eps), transformer("mid_block.attentions.0", levels - 1),
                    ResnetBlock2D(weights, "mid_block.resnets.1", groups, eps))
        self.up = []
        for i, kind in enumerate(arch.up_block_types):
            path = f"up_blocks.{i}"
            n = arch.layers_per_block + 1
            resnets = [ResnetBlock2D(weights, f"{path}.resnets.{j}", groups, eps) for j in range(n)]
            attns = ([transformer(f"{path}.attentions.{j}", levels - 1 - i) for j in range(n)]
                     if kind.startswith("CrossAttn") else [None] * n)
            up = Conv2d(weights, f"{path}.upsamplers.0.conv") if i < len(channels) - 1 else None
            self.up.append((resnets, attns, up))
        self.conv_norm_out = GroupNorm(weights, "conv_norm_out", groups, eps)
        self.conv_out = Conv2d(weights, "conv_out")
        self._frequencies = None

    def frequencies(self, gpu):
        """The sinusoidal embeddings' frequency tables, uploaded once."""
        if self._frequencies is None:
            dim = self.linear_1.weight.shape[1]
            self._frequencies = [self._upload(gpu, sampling.timestep_frequencies(dim, self.arch.freq_shift), "time_freqs")]
            if self.cond_proj is not None:
                gdim = self.arch.time_cond_proj_dim
                self._frequencies.append(self._upload(gpu, sampling.guidance_frequencies(gdim), "guidance_freqs"))
        return self._frequencies

    @staticmethod
    def _upload(gpu, values, label):
        t = gpu.tensor((len(values),), "f32", label, kept=True)
        gpu.upload(t, values.tobytes())
        return t

    async def time_embedding(self, gpu, timestep, guidance=None):
        """silu(emb) (every resnet reads emb through a SiLU), emb (N, D) from the (N,) timestep tensor, a row a
        timestep; LCM UNets add cond_proj of the guidance embedding of w = guidance[0] (the pipeline writes
        guidance_scale - 1)."""
        freqs = self.frequencies(gpu)
        rows = timestep.numel
        t = gpu.tensor((rows, 2 * freqs[0].numel), "f32", "time_proj")
        await sampling.time_embedding(gpu, timestep, freqs[0], t, flip_sin_to_cos=self.arch.flip_sin_to_cos,
                                      per_row=True)
        if self.cond_proj is not None:
            w = gpu.tensor((rows, self.arch.time_cond_proj_dim), "f32", "guidance_proj")
            await sampling.time_embedding(gpu, guidance, freqs[1], w, flip_sin_to_cos=False,
                                          scale=sampling.GUIDANCE_EMBEDDING_SCALE)
            t_cond = await self.cond_proj(gpu, w, residual=t)
            gpu.free(t, w)
            t = t_cond
        e1 = await self.linear_1(gpu, t, activation_fn="silu")
        gpu.free(t)
        emb_silu = await self.linear_2(gpu, e1, activation_fn="silu")
        gpu.free(e1)
        return emb_silu

    def resnets(self) -> list:
        """The resnets that take the time embedding, in call order."""
        ordered = [r for resnets, _, _ in self.down for r in resnets] + [self.mid[0], self.mid[2]] + [
            r for resnets, _, _ in self.up for r in resnets]
        return [r for r in ordered if r.time_emb_proj is not None]

    def time_row_layout(self) -> tuple[dict, int]:
        """Where each resnet's time projection lies in a row of the time table: {path: (offset, channels)} in f32
        elements, each offset on a binding boundary (OFFSET_ALIGNMENT); and the row's width."""
        layout, width = {}, 0
        step = OFFSET_ALIGNMENT // DTYPE_BYTES["f32"]
        for r in self.resnets():
            channels = r.time_emb_proj.out_features
            layout[r.path] = (width, channels)
            width += -(-channels // step) * step
        return layout, width

    def time_row_views(self, row) -> dict:
        """{path: (1, C) view} of each resnet's projection in `row` (1, width), laid out as time_row_layout."""
        layout, _ = self.time_row_layout()
        return {path: Tensor((1, c), "f32", row.alloc, row.offset + off * DTYPE_BYTES["f32"])
                for path, (off, c) in layout.items()}

    async def time_table(self, gpu, timesteps, guidance=None):
        """(N, width) f32 for the (N,) timesteps of a schedule: row i holds every resnet's time_emb_proj of
        silu(emb(timesteps[i])) plus its conv1's bias, as time_row_layout lays a row out. The timesteps are known
        before the first step, so a pipeline makes this once an image and each step copies its row into `time_rows`
        (time_row_views), which the conv1s take as their biases, instead of embedding and projecting its timestep
        and adding it: 70 dispatches fewer a step for SD 1.5."""
        rows = timesteps.numel
        layout, width = self.time_row_layout()
        table = gpu.tensor((rows, width), "f32", "time_table")
        emb = await self.time_embedding(gpu, timesteps, guidance)
        for r in self.resnets():
            off, channels = layout[r.path]
            t = await r.time_emb_proj(gpu, emb)  # (N, C)
            if r.conv1.bias is not None:
                await elementwise.add(gpu, t, r.conv1.bias, t)
            row_bytes = channels * DTYPE_BYTES["f32"]
            for i in range(rows):
                gpu.copy(t, table, row_bytes, src_offset=i * row_bytes,
                         dst_offset=(i * width + off) * DTYPE_BYTES["f32"])
            gpu.free(t)
        gpu.free(emb)
        return table

    def cross_attentions(self) -> list:
        transformers = [a for _, attns, _ in self.down + self.up for a in attns if a is not None] + [self.mid[1]]
        return [block.attn2 for t in transformers for block in t.blocks]

    async def cross_keys_values(self, gpu, context) -> tuple[dict, list]:
        """Every cross-attention's K and V over `context` (B, T, D): {path: (k, v)}, and the tensors that hold them.
        They depend on the text alone, so a pipeline makes them once an image and passes them to every step
        (`cross_kv`) instead of projecting the same context again each step."""
        cross_kv, held = {}, []
        for attn in self.cross_attentions():
            made, cross_kv[attn.path] = await attn.keys_values(gpu, context)
            held += made
        return cross_kv, held

    async def __call__(self, gpu, sample, timestep, context, guidance=None, cross_kv=None, time_rows=None):
        """sample (B, H, W, C) NHWC, timestep (1,) shared by the batch, context (B, T, D) -> prediction (B, H, W, C).
        cross_kv: the cross-attentions' K and V over context (cross_keys_values), where made already; time_rows:
        the resnets' time projections of this timestep ({path: (1, C)}: time_row_views of a time_table row), where
        made already, in place of timestep and guidance (else a one-row table is made here)."""
        table = None
        if not time_rows:
            table = await self.time_table(gpu, timestep, guidance)
            time_rows = self.time_row_views(table)

        async def resnet_of(resnet, x):
            return await resnet(gpu, x, time_row=time_rows.get(resnet.path))

        h = await self.conv_in(gpu, sample)
        skips = [h]
        for resnets, attns, down in self.down:
            for resnet, attn in zip(resnets, attns):
                h = await resnet_of(resnet, h)
                if attn is not None:
                    nxt = await attn(gpu, h, context, cross_kv)
                    gpu.free(h)
                    h = nxt
                skips.append(h)
            if down is not None:
                h = await down(gpu, h)
                skips.append(h)
        r0, a0, r1 = self.mid
        m0 = await resnet_of(r0, h)  # h is the last skip: kept
        m1 = await a0(gpu, m0, context, cross_kv)
        h = await resnet_of(r1, m1)
        gpu.free(m0, m1)
        for resnets, attns, up in self.up:
            for resnet, attn in zip(resnets, attns):
                skip = skips.pop()
                cat = gpu.tensor(h.shape[:3] + (h.shape[3] + skip.shape[3],), "f32", "skip_concat")
                await concat.concat_channels(gpu, h, skip, cat)
                gpu.free(h, skip)
                h = await resnet_of(resnet, cat)
                gpu.free(cat)
                if attn is not None:
                    nxt = await attn(gpu, h, context, cross_kv)
                    gpu.free(h)
                    h = nxt
            if up is not None:
                target = skips[-1].shape[1:3]  # nearest upsample to the skip's size (2x, or odd latent sizes)
                nxt = await up(gpu, h, upsample_to=target)
                gpu.free(h)
                h = nxt
        n = await self.conv_norm_out(gpu, h, silu=True)
        gpu.free(h)
        if table is not None:
            gpu.free(table)
        out = await self.conv_out(gpu, n)
        gpu.free(n)
        return out
