"""Network encoding and augmentations, checked against numpy written out by hand."""

import numpy as np
import pytest

from isslide_cube.ml.transforms import (
    Compose,
    CropJitter,
    FlipRotate,
    PhaseOffset,
    apply_batch,
    augmentation,
    to_network_input,
    wrap_phase,
)


def _ifg(seed=0, shape=(2, 12, 10)):
    rng = np.random.default_rng(seed)
    ifg = np.empty(shape, np.float32)
    ifg[..., 0, :, :] = rng.random(shape[:-3] + shape[-2:])
    ifg[..., 1, :, :] = rng.uniform(-np.pi, np.pi, shape[:-3] + shape[-2:])
    return ifg


def test_encoding_matches_cos_sin_and_zeroes_nodata():
    ifg = _ifg()
    ifg[0, 0, 0] = np.nan  # coherence missing
    ifg[1, 3, 4] = np.nan  # phase missing
    x = to_network_input(ifg, validity=True)
    assert x.shape == (4, 12, 10) and x.dtype == np.float32
    valid = np.isfinite(ifg).all(axis=0)
    np.testing.assert_allclose(x[0][valid], ifg[0][valid])
    np.testing.assert_allclose(x[1][valid], np.cos(ifg[1][valid]), atol=1e-6)
    np.testing.assert_allclose(x[2][valid], np.sin(ifg[1][valid]), atol=1e-6)
    assert np.all(x[:, ~valid] == 0)
    np.testing.assert_array_equal(x[3], valid.astype(np.float32))
    assert not np.isnan(x).any()


def test_encoding_keeps_leading_axes_and_rejects_wrong_band_axis():
    assert to_network_input(_ifg(shape=(5, 2, 4, 4))).shape == (5, 3, 4, 4)
    with pytest.raises(ValueError, match="2, H, W"):
        to_network_input(np.zeros((3, 4, 4), np.float32))


def test_phase_offset_is_one_constant_wrapped():
    ifg = _ifg()
    ifg[:, 0, 0] = np.nan
    sample = {"interferogram": ifg, "mask": np.zeros((12, 10), np.uint8)}
    out = PhaseOffset()(sample, np.random.default_rng(3))["interferogram"]
    assert np.isnan(out[1, 0, 0])
    np.testing.assert_array_equal(out[0], ifg[0])  # coherence untouched
    new, old = out[1][np.isfinite(out[1])], ifg[1][np.isfinite(ifg[1])]
    assert new.min() >= -np.pi and new.max() < np.pi
    diff = wrap_phase(new - old)
    np.testing.assert_allclose(diff, diff[0], atol=1e-5)  # the same offset everywhere
    assert abs(diff[0]) > 1e-3
    np.testing.assert_array_equal(ifg, _ifg_with_nan())  # input not mutated


def _ifg_with_nan():
    ifg = _ifg()
    ifg[:, 0, 0] = np.nan
    return ifg


def test_phase_offset_per_time_step():
    ifg = _ifg(shape=(3, 2, 6, 6))
    out = PhaseOffset()({"interferogram": ifg, "mask": None}, np.random.default_rng(0))
    diffs = [wrap_phase(out["interferogram"][t, 1] - ifg[t, 1]).mean() for t in range(3)]
    assert len(set(np.round(diffs, 4))) == 3


@pytest.mark.parametrize("seed", range(6))
def test_flips_and_rotations_move_image_and_mask_together(seed):
    rng = np.random.default_rng(100 + seed)
    mask = (rng.random((10, 10)) > 0.5).astype(np.uint8)
    ifg = np.stack([mask.astype(np.float32), rng.random((10, 10)).astype(np.float32)])
    out = FlipRotate()({"interferogram": ifg, "mask": mask}, np.random.default_rng(seed))
    np.testing.assert_array_equal(out["interferogram"][0], out["mask"].astype(np.float32))
    assert sorted(out["interferogram"][1].ravel()) == sorted(ifg[1].ravel())


def test_crop_jitter_shifts_content_and_fills_nodata():
    ifg = _ifg(shape=(2, 16, 16))
    mask = np.ones((16, 16), np.uint8)
    rng = np.random.default_rng(1)
    dy, dx = (int(v) for v in np.random.default_rng(1).integers(-3, 4, size=2))
    out = CropJitter(3)({"interferogram": ifg, "mask": mask}, rng)
    shifted = np.roll(ifg, (dy, dx), axis=(-2, -1))
    inside = np.isfinite(out["interferogram"][0])
    assert inside.sum() == (16 - abs(dy)) * (16 - abs(dx))
    np.testing.assert_array_equal(out["interferogram"][:, inside], shifted[:, inside])
    assert out["mask"][~inside].sum() == 0 and out["mask"][inside].all()


def test_augmentation_switches():
    assert augmentation(phase_offset=False).transforms == ()
    steps = augmentation(phase_offset=True, flips=True, jitter=4).transforms
    assert [type(s).__name__ for s in steps] == ["CropJitter", "FlipRotate", "PhaseOffset"]


@pytest.mark.parametrize("transform", [
    PhaseOffset(), PhaseOffset(p=0.5), FlipRotate(), CropJitter(2),
    augmentation(phase_offset=True, flips=True, rot90=True, jitter=3),
    Compose((PhaseOffset(p=0.3), FlipRotate(rot90=False), PhaseOffset())),
])
@pytest.mark.parametrize("lead", [(), (3,)])
def test_apply_batch_equals_the_per_sample_calls(transform, lead):
    n = 9
    ifg = _ifg(seed=5, shape=(n, *lead, 2, 8, 8))
    ifg[::4, ..., :2, :3] = np.nan
    ifg[1, ..., 1, 0, 0] = np.float32(np.pi)  # an edge value the wrap must move the same way
    mask = (np.random.default_rng(6).random((n, 8, 8)) > 0.5).astype(np.uint8)

    def rngs():
        return [np.random.default_rng((1, 2, i)) for i in range(n)]

    want = [transform({"interferogram": ifg[i], "mask": mask[i]}, r) for i, r in enumerate(rngs())]
    got = apply_batch(transform, {"interferogram": ifg.copy(), "mask": mask.copy()}, rngs())
    for i in range(n):
        np.testing.assert_array_equal(got["interferogram"][i], want[i]["interferogram"])
        np.testing.assert_array_equal(got["mask"][i], want[i]["mask"])
    assert np.array_equal(to_network_input(got["interferogram"]),
                          np.stack([to_network_input(w["interferogram"]) for w in want]))


def test_batched_encoding_zeroes_only_the_gaps():
    ifg = _ifg(shape=(4, 2, 6, 6))
    ifg[2, 1, 3, 3] = np.nan
    x = to_network_input(ifg, validity=True)
    for i in range(4):
        np.testing.assert_array_equal(x[i], to_network_input(ifg[i], validity=True))
    assert np.all(x[2, :, 3, 3] == 0) and np.count_nonzero(x[:, 3] == 0) == 1
