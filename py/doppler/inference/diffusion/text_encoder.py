"""CLIP text encoder (transformers' CLIPTextModel), from the manifest's architecture numbers.

    h = token_embedding[ids] + position_embedding[0:T]
    per layer:  h = h + out_proj(attn_causal(q_proj(ln1 h), k_proj(ln1 h), v_proj(ln1 h)))
                h = h + fc2(quick_gelu(fc1(ln2 h)))
    out = final_layer_norm(h)        (clip_skip k: the hidden state k layers before the last, then the final norm)
"""

from __future__ import annotations

from ...ops import embedding
from .nn import LayerNorm, Linear, scaled_dot_product_attention


class CLIPEncoderLayer:
    def __init__(self, weights, path: str, arch):
        self.path = path
        self.heads = arch.num_attention_heads
        self.act = arch.hidden_act
        self.layer_norm1 = LayerNorm(weights, f"{path}.layer_norm1", arch.layer_norm_eps)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            Linear(weights, f"{path}.self_attn.{name}") for name in ("q_proj", "k_proj", "v_proj", "out_proj")
        )
        self.layer_norm2 = LayerNorm(weights, f"{path}.layer_norm2", arch.layer_norm_eps)
        self.fc1 = Linear(weights, f"{path}.mlp.fc1")
        self.fc2 = Linear(weights, f"{path}.mlp.fc2")

    async def __call__(self, gpu, h):
        x = await self.layer_norm1(gpu, h)
        q, k, v = [await proj(gpu, x) for proj in (self.q_proj, self.k_proj, self.v_proj)]
        gpu.free(x)
        a = await scaled_dot_product_attention(gpu, q, k, v, self.heads, f"{self.path}.self_attn", causal=True)
        gpu.free(q, k, v)
        h2 = await self.out_proj(gpu, a, residual=h)
        gpu.free(a)
        x = await self.layer_norm2(gpu, h2)
        m = await self.fc1(gpu, x, activation_fn=self.act)
        gpu.free(x)
        out = await self.fc2(gpu, m, residual=h2)
        gpu.free(m, h2)
        return out


class CLIPTextModel:
    def __init__(self, weights, arch):
        path = "text_model"
        self.token_embedding = weights[f"{path}.embeddings.token_embedding.weight"]
        self.position_embedding = weights[f"{path}.embeddings.position_embedding.weight"]
        self.layers = [CLIPEncoderLayer(weights, f"{path}.encoder.layers.{i}", arch)
                       for i in range(arch.num_hidden_layers)]
        self.final_layer_norm = LayerNorm(weights, f"{path}.final_layer_norm", arch.layer_norm_eps)
        self.hidden_size = arch.hidden_size

    async def __call__(self, gpu, ids, clip_skip: int = 0):
        """ids: (B, T) u32 token ids on the GPU -> (B, T, hidden) embeddings."""
        b, t = ids.shape
        h = gpu.tensor((b, t, self.hidden_size), "f32", "text_model.embeddings")
        await embedding.embed(gpu, ids, self.token_embedding, self.position_embedding, h)
        for layer in self.layers[: len(self.layers) - clip_skip]:
            nxt = await layer(gpu, h)
            gpu.free(h)
            h = nxt
        out = await self.final_layer_norm(gpu, h)
        gpu.free(h)
        return out
