"""Global map, move centres and extraction against independent oracles.

Oracles: numpy unions and slicing of the cube loaded in memory,
``scipy.ndimage.distance_transform_edt`` and ``scipy.ndimage.label``.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from patch_cubes import Move, make_cube
from scipy import ndimage

from isslide_cube import schema as s
from isslide_cube.patches import extract_patches, global_mask, move_centres
from isslide_cube.schema import CubeError, PatchesError

SIZE = 40


@pytest.fixture(scope="module")
def loaded(cube):
    return cube.compute()


@pytest.fixture(scope="module")
def centres(cube):
    return move_centres(cube, SIZE)


# ----------------------------------------------------------- global mask
def test_global_mask_is_lazy_union_ignoring_fill(cube, loaded):
    gm = global_mask(cube)
    assert isinstance(gm.data, da.Array)
    assert gm.dims == (s.Y, s.X) and gm.dtype == bool
    expected = (loaded[s.MASK].values == 1).any(axis=(0, 1))
    np.testing.assert_array_equal(gm.values, expected)
    # the fill value 255 of missing interferograms is present and did not count
    assert (loaded[s.MASK].values == s.MASK_FILL).any()
    assert not gm.values.all()


def test_global_mask_without_mask_names_the_fix():
    cube = make_cube(with_mask=False)
    for func in (global_mask, move_centres, extract_patches):
        with pytest.raises(CubeError, match="without annotations.*--annotations"):
            func(cube)


# ---------------------------------------------------------------- centres
def _coverage(centres, shape, size):
    covered = np.zeros(shape, dtype=bool)
    for r, c in zip(centres.row, centres.col, strict=True):
        covered[r:r + size, c:c + size] = True
    return covered


@pytest.mark.parametrize("size", [SIZE, 17, 100])
def test_centres_cover_every_annotated_pixel_with_whole_windows(cube, loaded, size):
    gm = (loaded[s.MASK].values == 1).any(axis=(0, 1))
    centres = move_centres(cube, size)
    ny, nx = gm.shape
    assert (centres.row >= 0).all() and (centres.col >= 0).all()
    assert (centres.row + size <= ny).all() and (centres.col + size <= nx).all()
    assert not (gm & ~_coverage(centres, gm.shape, size)).any()
    assert list(centres.location) == list(range(len(centres)))
    assert centres.attrs["patch_size"] == size


def test_centres_follow_the_distance_transform_greedily(cube, loaded, centres):
    gm = (loaded[s.MASK].values == 1).any(axis=(0, 1))
    dist = ndimage.distance_transform_edt(np.pad(gm, 1))[1:-1, 1:-1]
    rows, cols = np.nonzero(gm)
    best = np.lexsort((cols, rows, -dist[rows, cols]))[0]
    first = centres.iloc[0]
    assert (first.centre_row, first.centre_col) == (rows[best], cols[best])
    covered = np.zeros_like(gm)
    for loc in centres.itertuples():
        # each centre is annotated, was uncovered, and is the most interior such pixel
        assert gm[loc.centre_row, loc.centre_col] and not covered[loc.centre_row, loc.centre_col]
        free = gm & ~covered
        assert dist[loc.centre_row, loc.centre_col] == dist[free].max()
        covered[loc.row:loc.row + SIZE, loc.col:loc.col + SIZE] = True


def test_centres_are_deterministic(cube, centres):
    again = move_centres(cube, SIZE)
    assert again.equals(centres)


def test_locations_per_connected_component(loaded, centres):
    gm = (loaded[s.MASK].values == 1).any(axis=(0, 1))
    labels, n = ndimage.label(gm, structure=np.ones((3, 3)))
    assert centres.attrs["n_components"] == n
    per = centres.attrs["locations_per_component"]
    assert set(per) == set(range(1, n + 1))  # every component got a location
    assert sum(per.values()) == len(centres)
    np.testing.assert_array_equal(centres.component,
                                  labels[centres.centre_row, centres.centre_col])
    # the 30 x 45 box is wider than a 40 px patch: its component needs two locations
    box = labels[30, 120]
    assert per[box] >= 2


def test_one_disc_gives_one_centred_location():
    cube = make_cube(moves=(Move(60, 70, radius=5),))
    centres = move_centres(cube, 20)
    assert len(centres) == 1
    loc = centres.iloc[0]
    assert (loc.centre_row, loc.centre_col) == (60, 70)
    assert (loc.row, loc.col) == (50, 60)
    assert loc.zone == "ecrins"  # bottom-left quadrant (rows >= 60, cols < 75)


def test_border_windows_shift_inward():
    cube = make_cube(ny=60, nx=80, moves=(Move(0, 0, height=3, width=3),
                                          Move(57, 77, height=3, width=3)))
    centres = move_centres(cube, 25)
    assert sorted(zip(centres.row, centres.col, strict=True)) == [(0, 0), (35, 55)]


def test_centre_zone_and_lonlat(cube, loaded, centres):
    zone = loaded[s.ZONE].values
    names = [s.ZONES[z] for z in zone[centres.centre_row, centres.centre_col]]
    assert list(centres.zone) == names
    assert set(centres.zone) >= {"other", "vanoise", "ecrins", "queyras"}
    x, y = loaded.x.values, loaded.y.values
    # the window centre lies between pixels SIZE/2 - 1 and SIZE/2 of the window
    lon = (x[centres.col + SIZE // 2 - 1] + x[centres.col + SIZE // 2]) / 2
    lat = (y[centres.row + SIZE // 2 - 1] + y[centres.row + SIZE // 2]) / 2
    np.testing.assert_allclose(centres.lon, lon, atol=1e-12)
    np.testing.assert_allclose(centres.lat, lat, atol=1e-12)


def test_empty_global_mask_gives_no_location(caplog):
    cube = make_cube(moves=())
    centres = move_centres(cube, SIZE)
    assert len(centres) == 0 and "row" in centres and centres.attrs["n_components"] == 0
    assert "global annotation map is empty" in caplog.text
    patches = extract_patches(cube, SIZE, centres)
    assert patches.sizes[s.SAMPLE] == 0


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "40", 121, 151])
def test_bad_sizes(cube, size):
    with pytest.raises(PatchesError, match="patch size"):
        move_centres(cube, size)
    with pytest.raises(PatchesError, match="patch size"):
        extract_patches(cube, size)


def test_centres_outside_the_grid_are_refused(cube, centres):
    moved = centres.assign(row=centres.row + 200)
    with pytest.raises(PatchesError, match="outside the 120 x 150 grid"):
        extract_patches(cube, SIZE, moved)


# ------------------------------------------------------------- extraction
def _naive(loaded, centres, size):
    """Oracle: plain numpy slicing of the loaded cube, window by window."""
    has = loaded[s.HAS_INTERFEROGRAM].values
    ifg, mask = loaded[s.INTERFEROGRAM].values, loaded[s.MASK].values
    pix, msk, keys = [], [], []
    for si, di in np.argwhere(has):
        for loc in centres.itertuples():
            win = np.s_[loc.row:loc.row + size, loc.col:loc.col + size]
            pix.append(ifg[si, di][(slice(None), *win)])
            msk.append(mask[si, di][win])
            keys.append((si, di, loc.location))
    return np.stack(pix), np.stack(msk), keys


@pytest.mark.parametrize("chunk", [32, 40, 1000, (25, 50, 45)])
def test_extraction_equals_naive_slicing(chunk, centres):
    cube = make_cube()
    if isinstance(chunk, tuple):  # irregular chunks: windows straddle uneven borders
        cube = cube.chunk({s.Y: chunk + (120 - sum(chunk),), s.X: 50})
    else:
        cube = cube.chunk({s.Y: chunk, s.X: chunk})
    loaded = cube.compute()
    patches = extract_patches(cube, SIZE, centres)
    assert isinstance(patches[s.INTERFEROGRAM].data, da.Array)
    got = patches.compute()
    pix, msk, keys = _naive(loaded, centres, SIZE)
    np.testing.assert_array_equal(got[s.INTERFEROGRAM].values, pix)  # NaN == NaN here
    np.testing.assert_array_equal(got[s.MASK].values, msk)
    starts = loaded.start_date.values[[k[0] for k in keys]]
    delays = loaded.delay.values[[k[1] for k in keys]]
    np.testing.assert_array_equal(got.start_date.values, starts)
    np.testing.assert_array_equal(got.delay.values, delays)
    np.testing.assert_array_equal(got.location.values, [k[2] for k in keys])
    np.testing.assert_array_equal(got.end_date.values,
                                  starts + delays.astype("timedelta64[D]"))
    fraction = msk.reshape(len(msk), -1).mean(axis=1)
    np.testing.assert_allclose(got.moving_fraction.values, fraction, rtol=1e-6)
    np.testing.assert_array_equal(got.has_move.values, fraction > 0)


def test_patches_follow_the_schema(cube, centres):
    patches = extract_patches(cube, SIZE, centres, sample_chunk=7)
    s.validate_patches(patches)
    assert patches[s.INTERFEROGRAM].dims == s.PATCH_DIMS
    assert patches[s.INTERFEROGRAM].dtype == np.float32 and patches[s.MASK].dtype == np.uint8
    assert list(patches[s.BAND].values) == list(s.BANDS)
    assert set(patches[s.INTERFEROGRAM].chunks[0][:-1]) == {7}
    assert set(patches[s.MASK].chunks[0][:-1]) == {7}
    n_ifg = int(cube[s.HAS_INTERFEROGRAM].sum())
    assert patches.sizes[s.SAMPLE] == len(centres) * n_ifg
    assert patches.attrs["patch_size"] == SIZE
    assert "WGS 84" in patches.attrs["crs"]
    t = patches.attrs["transform"]
    assert t[0] == pytest.approx(6.5) and t[3] == pytest.approx(45.0)
    assert t[1] == pytest.approx(0.001) and t[5] == pytest.approx(-0.001)
    # both cases exist in the fixture: patches with and without a move
    has = patches.has_move.values
    assert has.any() and (~has).any()
    assert set(np.unique(patches[s.MASK].values)) <= {0, 1}


def test_extraction_does_not_mutate_the_cube(cube, centres):
    before = cube.copy(deep=False)
    extract_patches(cube, SIZE, centres)
    xr.testing.assert_identical(cube, before)


class CountingArray:
    """An array that records every slice read from it (a stand-in for a chunked store)."""

    def __init__(self, values: np.ndarray):
        self.values, self.shape, self.dtype, self.ndim = values, values.shape, values.dtype, values.ndim
        self.reads: list[tuple] = []

    def __getitem__(self, key):
        out = self.values[key]
        if out.size:
            self.reads.append(tuple((k.start, k.stop) for k in key))
        return out


def test_each_touched_chunk_is_read_once(centres):
    chunk = 32
    loaded = make_cube(chunk=chunk).compute()
    arrays = {}
    ds = loaded.copy()
    for name in (s.INTERFEROGRAM, s.MASK):
        arrays[name] = CountingArray(loaded[name].values)
        chunks = (1, 1, 2, chunk, chunk) if name == s.INTERFEROGRAM else (1, 1, chunk, chunk)
        ds[name] = (loaded[name].dims, da.from_array(arrays[name], chunks=chunks, asarray=False))
    with dask.config.set(scheduler="sync"):
        extract_patches(ds, SIZE, centres).compute()
    expected = set()
    for si, di in np.argwhere(loaded[s.HAS_INTERFEROGRAM].values):
        for r, c in zip(centres.row, centres.col, strict=True):
            for by in range(r // chunk, (r + SIZE - 1) // chunk + 1):
                for bx in range(c // chunk, (c + SIZE - 1) // chunk + 1):
                    expected.add((si, di, by, bx))
    for name, arr in arrays.items():
        blocks = [(k[0][0], k[1][0], k[-2][0] // chunk, k[-1][0] // chunk) for k in arr.reads]
        assert len(blocks) == len(set(blocks)), f"{name}: a chunk was read twice"
        assert set(blocks) == expected, f"{name}: read untouched chunks or missed some"
