"""LayerNorm over the last axis against the float64 reference: transformer and CLIP widths scaled down, f16-stored
affine, a large mean, rows past the 65535 workgroups of one dispatch row, rows too wide for registers (the strided
entry), and f16 out."""

import numpy as np
import pytest

from reference import F16_ULP, POISON, assert_close, rng
from reference import layernorm as ref

SOURCE = """
from doppler.ops import layernorm
shape = {shape}
tx = gpu.tensor(shape, "f32", "x"); out = gpu.tensor(shape, "{out_dtype}", "out")
g = gpu.tensor(shape[-1:], "{pdtype}", "gamma"); b = gpu.tensor(shape[-1:], "{pdtype}", "beta")
gpu.upload(tx, x); gpu.upload(g, gamma); gpu.upload(b, beta); gpu.upload(out, poison)
await layernorm.layer_norm(gpu, tx, g, b, out, {eps})
result = await gpu.read(out)
gpu.free(tx, out, g, b)
result
"""

# (shape, eps, param storage, mean of x)
CASES = {
    "transformer": ((2, 77, 96), 1e-5, "f32", 0.0),
    "clip-f16w": ((1, 13, 768), 1e-5, "f16", 0.0),
    "large-mean": ((3, 5, 321), 1e-6, "f32", 1000.0),
    "rows-past-65535": ((65535 + 3, 5), 1e-5, "f32", 0.0),
    "wider-than-registers": ((2, 3, 64 * 32 + 5), 1e-5, "f16", 0.0),  # the strided entry (main)
}
BROWSER = {"clip-f16w"}


def _inputs(shape, seed, mean, pdtype):
    r = rng(seed)
    x = (mean + r.standard_normal(shape) * r.uniform(0.5, 2.0, shape[:-1] + (1,))).astype(np.float32)
    gamma = (1.0 + 0.3 * r.standard_normal(shape[-1])).astype(np.float16 if pdtype == "f16" else np.float32)
    return x, gamma, (0.2 * r.standard_normal(shape[-1])).astype(gamma.dtype)


@pytest.mark.parametrize("case", CASES)
def test_layer_norm_matches_reference(gpu_run, request, case):
    shape, eps, pdtype, mean = CASES[case]
    if "browser" in request.node.callspec.id and case not in BROWSER:
        pytest.skip("SwiftShader is slow: the browser runs one case")
    x, gamma, beta = _inputs(shape, 5, mean, pdtype)
    got = gpu_run(SOURCE.format(shape=shape, pdtype=pdtype, eps=eps, out_dtype="f32"), x=x.tobytes(),
                  gamma=gamma.tobytes(), beta=beta.tobytes(), poison=np.full(shape, POISON, np.float32).tobytes())
    path = "f16w" if pdtype == "f16" else "f32"
    assert_close(np.frombuffer(got, np.float32), ref.layer_norm(x, gamma, beta, eps), path)


@pytest.mark.parametrize("case", ["transformer", "wider-than-registers"])
def test_layer_norm_to_f16(native_f16_run, case):
    # f16 out (wgsl/layernorm_f16_output.wgsl) for tensor-core GEMMs: the f32 result rounded once.
    shape, eps, pdtype, mean = CASES[case]
    x, gamma, beta = _inputs(shape, 7, mean, pdtype)
    poison = np.full(shape, np.nan, np.float16).tobytes()
    got = native_f16_run(SOURCE.format(shape=shape, pdtype=pdtype, eps=eps, out_dtype="f16"), x=x.tobytes(),
                         gamma=gamma.tobytes(), beta=beta.tobytes(), poison=poison)
    want = ref.layer_norm(x, gamma, beta, eps)
    got = np.frombuffer(got, np.float16)[:want.size].reshape(want.shape).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=F16_ULP / 2 + 1e-5, atol=1e-6)


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    x, gamma, beta = _inputs((4, 768), 6, 0.0, "f32")
    want = torch.nn.functional.layer_norm(torch.from_numpy(x).double(), (768,), torch.from_numpy(gamma).double(),
                                          torch.from_numpy(beta).double(), 1e-5).numpy()
    np.testing.assert_allclose(ref.layer_norm(x, gamma, beta, 1e-5), want, rtol=1e-12, atol=1e-12)
