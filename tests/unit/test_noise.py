"""The numpy noise twin: Philox4x32-10 known answers (Random123's kat_vectors) and the Box-Muller layout."""

import numpy as np
import pytest

from doppler.convert.noise import gaussian, philox4x32, sincos

KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,want", KAT)
def test_philox_known_answers(counter, key, want):
    assert tuple(philox4x32(np.array([counter], np.uint32), key)[0]) == want


def test_gaussian_layout_and_prefix_stability():
    z = gaussian(2**33 + 5, 3, 10)
    assert z.dtype == np.float32 and z.shape == (10,)
    np.testing.assert_array_equal(gaussian(2**33 + 5, 3, 4001)[:10], z)  # element j depends only on j
    assert not np.array_equal(gaussian(2**33 + 5, 4, 10), z)
    assert not np.array_equal(gaussian(5, 3, 10), z)  # the seed's high word matters


def test_sincos_is_accurate_over_the_reduction_range():
    x = np.linspace(-30000, 30000, 600_001).astype(np.float32)
    sin, cos = sincos(x)
    assert np.abs(sin - np.sin(x.astype(np.float64))).max() < 2e-7
    assert np.abs(cos - np.cos(x.astype(np.float64))).max() < 2e-7


def test_bad_seed_is_refused():
    with pytest.raises(ValueError, match="seed must be in"):
        gaussian(-1, 0, 4)
