"""Where the tiled VAE decode puts its tiles (inference/diffusion/tiling.py), from decode.tiling as configured."""

import pytest

from doppler.config.diffusion import ManifestDiffusion, Tiling
from doppler.config.merge import merge_diffusion_config
from doppler.config.schema import ConfigError
from doppler.inference.diffusion.tiling import plan_tiles, spans

SD_UPSCALE = 8


def configured(**tiling) -> Tiling:
    return merge_diffusion_config(ManifestDiffusion(), {"decode": {"tiling": tiling}}).decode.tiling


@pytest.mark.parametrize("length, tile, overlap", [(100, 64, 8), (128, 64, 16), (65, 64, 0), (37, 10, 6), (9, 4, 3)])
def test_tiles_are_equal_share_the_overlap_and_their_cores_partition_the_axis(length, tile, overlap):
    got = spans(length, tile, overlap)
    size = got[0].size
    assert len(got) >= 2 and size <= tile
    assert all(s.size == size and 0 <= s.start and s.start + size <= length for s in got)
    assert got[0].start == 0 and got[-1].start + size == length
    assert [s.core_start for s in got[1:]] == [s.core_end for s in got[:-1]]
    assert got[0].core_start == 0 and got[-1].core_end == length
    for a, b in zip(got, got[1:]):
        assert a.start + size - b.start >= overlap  # neighbours share at least the overlap
        assert a.start + size - a.core_end >= overlap // 2 and b.core_start - b.start >= overlap // 2  # halos
    fewer = len(got) - 1  # as few tiles as the size allows: one fewer would not share the overlap
    assert fewer == 1 or (length - tile) / (fewer - 1) > tile - overlap
    assert len(got) * (size - 1) - (len(got) - 1) * overlap < length  # and as small as they can be


def test_a_short_axis_is_one_tile():
    (only,) = spans(40, 64, 8)
    assert (only.start, only.size, only.core_start, only.core_end) == (0, 40, 0, 40)


def test_tiles_follow_the_configured_size_and_overlap():
    """A 1024 x 768 image (latent 128 x 96) in tiles of at most 512 pixels overlapping by 128: 3 x 2 tiles (two
    would not share 16 latent pixels along 128), shrunk to 54 x 56 latent pixels, the least that keep the overlap."""
    tiles = plan_tiles(128, 96, configured(enabled=True, tileSize=512, overlap=128), SD_UPSCALE)
    assert {(t.rows.size, t.cols.size) for t in tiles} == {(54, 56)}
    assert sorted({t.rows.start for t in tiles}) == [0, 37, 74] and sorted({t.cols.start for t in tiles}) == [0, 40]
    assert tiles[0].core(SD_UPSCALE) == (0, 0, 45 * SD_UPSCALE, 48 * SD_UPSCALE)


@pytest.mark.parametrize("tiling, path, expected", [
    ({"tileSize": 100}, "decode.tiling.tileSize", "got 100; expected an integer in [64, 8192], a multiple of 8"),
    ({"tileSize": 256, "overlap": 256}, "decode.tiling.overlap", "got 256; expected less than tileSize (256)"),
    ({"overlap": 12}, "decode.tiling.overlap", "got 12; expected an integer in [0, 8192], a multiple of 8"),
])
def test_bad_tiling_configs_are_named(tiling, path, expected):
    with pytest.raises(ConfigError) as caught:
        configured(enabled=True, **tiling)
    (problem,) = caught.value.problems
    assert problem.startswith(f"runtime.inference.diffusion.{path}: ") and expected in problem


def test_tiles_off_the_latent_grid_or_without_a_core_are_named():
    """Tilings the schema cannot see: a VAE of upscale 16 needs sizes in multiples of 16; a Tiling made in code
    still has its overlap checked."""
    with pytest.raises(ConfigError) as caught:
        plan_tiles(64, 64, configured(enabled=True, tileSize=520, overlap=72), 16)
    assert caught.value.problems == (
        "runtime.inference.diffusion.decode.tiling.tileSize: got 520; expected a multiple of the VAE's upscale "
        "factor 16, so tiles start on latent pixels",
        "runtime.inference.diffusion.decode.tiling.overlap: got 72; expected a multiple of the VAE's upscale "
        "factor 16, so tiles start on latent pixels")
    with pytest.raises(ConfigError, match=r"decode\.tiling\.overlap: got 64; expected less than tileSize \(64\)"):
        plan_tiles(64, 64, Tiling(enabled=True, tile_size=64, overlap=64), SD_UPSCALE)
