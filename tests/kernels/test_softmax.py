"""Row softmax against the float64 reference: wide rows (a 64x64 latent's 4096 keys scaled down), CLIP's causal 77,
large logits that overflow exp without the max subtracted, and rows past 65535 workgroups."""

import numpy as np
import pytest

from reference import POISON, assert_close, rng
from reference import softmax as ref

SOURCE = """
from doppler.ops import softmax
shape = {shape}
tx = gpu.tensor(shape, "f32", "x"); out = gpu.tensor(shape, "f32", "out")
gpu.upload(tx, x); gpu.upload(out, poison)
await softmax.softmax(gpu, tx, out, {scale}, causal={causal})
result = await gpu.read(out)
gpu.free(tx, out)
result
"""

# (shape, scale, causal, logit spread)
CASES = {
    "wide": ((2, 3, 1000), 0.125, False, 4.0),
    "causal-clip": ((2, 77, 77), 1.0, True, 3.0),
    "large-logits": ((5, 300), 2.0, False, 200.0),
    "rows-past-65535": ((65535 + 2, 3), 1.0, False, 1.0),
}
BROWSER = {"causal-clip"}


@pytest.mark.parametrize("case", CASES)
def test_softmax_matches_reference(gpu_run, request, case):
    shape, scale, causal, spread = CASES[case]
    if "browser" in request.node.callspec.id and case not in BROWSER:
        pytest.skip("SwiftShader is slow: the browser runs one case")
    x = (spread * rng(7).standard_normal(shape)).astype(np.float32)
    got = gpu_run(SOURCE.format(shape=shape, scale=scale, causal=causal), x=x.tobytes(),
                  poison=np.full(shape, POISON, np.float32).tobytes())
    assert_close(np.frombuffer(got, np.float32), ref.softmax(x, scale, causal), "f32")


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    x = rng(8).standard_normal((2, 9, 9))
    mask = torch.triu(torch.ones(9, 9, dtype=torch.bool), 1)
    want = torch.softmax(torch.from_numpy(0.5 * x).masked_fill(mask, float("-inf")), -1).numpy()
    np.testing.assert_allclose(ref.softmax(x, 0.5, causal=True), want, rtol=1e-12, atol=1e-15)
