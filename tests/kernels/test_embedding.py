import numpy as np
import pytest

from gpu_runner import binding_limited
from reference import POISON, assert_close, embedding as ref, rng

SOURCE = """
from doppler.ops import embedding
ids_t = gpu.tensor(ids_shape, "u32", "ids")
tok_t = gpu.tensor(tok_shape, tok_dtype, "tokens")
pos_t = gpu.tensor(pos_shape, pos_dtype, "positions")
out_t = gpu.tensor((*ids_shape, tok_shape[1]), "f32", "out")
for t, data in ((ids_t, ids), (tok_t, tok), (pos_t, pos), (out_t, poison)):
    gpu.upload(t, data)
""" + binding_limited("""
await embedding.embed(gpu, ids_t, tok_t, pos_t, out_t)
""") + """
result = await gpu.read(out_t)
gpu.free(ids_t, tok_t, pos_t, out_t)
[result, dispatched]
"""

DTYPES = {"f32": np.float32, "f16": np.float16}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def run_embed(gpu_run, ids, tok, pos, max_binding=0):
    header = (f"ids_shape, tok_shape, pos_shape, tok_dtype, pos_dtype, max_binding = {ids.shape}, {tok.shape}, "
              f"{pos.shape}, {NAMES[tok.dtype]!r}, {NAMES[pos.dtype]!r}, "
              f"{max_binding}\n")
    poison = np.full((*ids.shape, tok.shape[1]), POISON, np.float32)
    got, dispatches = gpu_run(header + SOURCE, ids=ids.tobytes(), tok=tok.tobytes(), pos=pos.tobytes(),
                              poison=poison.tobytes())
    return np.frombuffer(got, np.float32).reshape(poison.shape), dispatches


def tables(vocab, channels, positions, tok_dtype, pos_dtype, seed=7):
    r = rng(seed)
    return (r.standard_normal((vocab, channels)).astype(DTYPES[tok_dtype]),
            r.standard_normal((positions, channels)).astype(DTYPES[pos_dtype]))


@pytest.mark.parametrize("tok_dtype,pos_dtype", [("f32", "f32"), ("f16", "f32"), ("f16", "f16")])
def test_embed_matches_numpy(gpu_run, tok_dtype, pos_dtype):
    tok, pos = tables(301, 19, 13, tok_dtype, pos_dtype)  # odd C: f16 rows straddle words
    ids = rng(8).integers(0, 301, (2, 11)).astype(np.uint32)
    ids[0, :2] = [0, 300]
    got, dispatches = run_embed(gpu_run, ids, tok, pos)
    assert dispatches == 1
    assert_close(got, ref.embed(ids, tok, pos), "f32")


@pytest.mark.parametrize("tok_dtype", ["f32", "f16"])
def test_embed_splits_a_table_over_the_binding_limit(gpu_run, tok_dtype):
    tok, pos = tables(1000, 24, 77, tok_dtype, "f32")
    ids = rng(9).integers(0, 1000, (2, 77)).astype(np.uint32)
    ids[0, :4] = [0, 167, 168, 999]  # the edges of the first 168-row part (f32) and the last row
    got, dispatches = run_embed(gpu_run, ids, tok, pos, max_binding=16384)
    assert dispatches == (6 if tok_dtype == "f32" else 3)  # 96000 B in 168-row parts; 48000 B in 336-row parts
    assert_close(got, ref.embed(ids, tok, pos), "f32")
