"""Temporal stacks on the cube and on patches: shapes, alignment, missing members."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from temporal_fixtures import (
    make_cube,
    make_patches,
    open_patches,
    open_store,
    write_cube,
    write_patches,
)

import isslide_cube  # noqa: F401  (registers ds.isslide)
from isslide_cube import schema
from isslide_cube.temporal import (
    member_index,
    parse_spec,
    patch_member_index,
    stack_cube,
    stack_patches,
    target_position,
)


@pytest.fixture(scope="module")
def cube_store(tmp_path_factory):
    return write_cube(make_cube(), tmp_path_factory.mktemp("c") / "cube.zarr")


def test_parse_spec():
    assert parse_spec("start").kind == "start"
    assert parse_spec("consecutive:4").offsets == (-2, -1, 0, 1)
    for bad in ("consecutive", "consecutive:0", "middle", "consecutive:x"):
        with pytest.raises(ValueError, match="consecutive:K"):
            parse_spec(bad)


def _brute(starts, delays, has, kind, k=0):
    """Members found by dates, one interferogram at a time."""
    out = {}
    dates = list(pd.DatetimeIndex(starts))
    for i, s in enumerate(dates):
        for j, d in enumerate(delays):
            members = []
            if kind == "start":
                keys = [(s, dd) for dd in delays]
            elif kind == "end":
                e = s + pd.Timedelta(days=int(d))
                keys = [(e - pd.Timedelta(days=int(dd)), dd) for dd in delays]
            else:
                keys = [(dates[i + o] if 0 <= i + o < len(dates) else None, d)
                        for o in range(-(k // 2), k - k // 2)]
            for ks, kd in keys:
                ok = ks in dates and bool(has[i, j]) and bool(has[dates.index(ks), list(delays).index(kd)])
                members.append((dates.index(ks), list(delays).index(kd)) if ok else None)
            out[i, j] = members
    return out


@pytest.mark.parametrize("spec", ["start", "end", "consecutive:3", "consecutive:2"])
def test_member_index_matches_dates(spec):
    cube = make_cube(n_dates=7)
    starts, delays = cube.start_date.values, cube.delay.values
    has = cube.has_interferogram.values
    i_s, i_d, valid = member_index(starts, delays, has, spec)
    p = parse_spec(spec)
    brute = _brute(starts, delays, has, p.kind, p.k)
    for (i, j), members in brute.items():
        got = [(int(a), int(b)) if ok else None for a, b, ok in zip(i_s[i, j], i_d[i, j], valid[i, j], strict=True)]
        assert got == members, (i, j)
    # each interferogram sits in its own stack at target_position
    pos = target_position(spec, delays)
    for i in range(len(starts)):
        for j in range(len(delays)):
            if has[i, j]:
                assert (i_s[i, j, pos[j]], i_d[i, j, pos[j]]) == (i, j)


def test_end_stack_shares_end_date():
    cube = make_cube(n_dates=8)
    st = stack_cube(cube, "end")
    end = cube.end_date.values
    member_end = st.member_start_date.values + st.member_delay.values.astype("timedelta64[D]")
    ok = st.valid.values
    assert ok.any()
    assert (member_end[ok] == np.broadcast_to(end[:, :, None], ok.shape)[ok]).all()


@pytest.mark.parametrize("spec", ["start", "end", "consecutive:3"])
def test_stack_cube_values_and_fill(cube_store, spec):
    cube = open_store(cube_store)
    st = stack_cube(cube, spec)
    da = st[schema.INTERFEROGRAM]
    assert da.dims == (schema.START_DATE, schema.DELAY, "time", schema.BAND, "y", "x")
    assert da.chunks is not None  # stays lazy on a dask-backed cube
    values = da.values
    ref = cube[schema.INTERFEROGRAM].values
    idx = {pd.Timestamp(s): k for k, s in enumerate(cube.start_date.values)}
    dly = {int(d): k for k, d in enumerate(cube.delay.values)}
    for i in range(st.sizes[schema.START_DATE]):
        for j in range(st.sizes[schema.DELAY]):
            for t in range(st.sizes["time"]):
                if st.valid.values[i, j, t]:
                    a = idx[pd.Timestamp(st.member_start_date.values[i, j, t])]
                    b = dly[int(st.member_delay.values[i, j, t])]
                    np.testing.assert_array_equal(values[i, j, t], ref[a, b])
                else:
                    assert np.isnan(values[i, j, t]).all()
    mask = stack_cube(cube, spec, variable=schema.MASK)
    assert mask[schema.MASK].dtype == np.uint8
    assert (mask[schema.MASK].values[~mask.valid.values] == 0).all()


def test_consecutive_edges_are_flagged():
    cube = make_cube(n_dates=6)
    st = stack_cube(cube, "consecutive:3")
    # first start date has no predecessor; the 6-day delay's last one no successor
    assert not st.valid.values[0, 0, 0] and st.valid.values[0, 0, 1:].all()
    assert list(st.time.values) == [-1, 0, 1]


@pytest.mark.parametrize("spec", ["start", "end", "consecutive:3"])
def test_patch_stacks_match_cube_stacks(tmp_path, spec):
    cube = make_cube()
    locs = ((10, 12), (36, 32))
    drop = {(1, 2, 0)}  # location 1 misses one patch: a gap in its stacks
    patches = open_patches(write_patches(make_patches(cube, locations=locs, drop=drop),
                                       tmp_path / "p.zarr"))
    st = stack_patches(patches, spec)
    cst = stack_cube(cube, spec)
    size = patches.sizes["y"]
    assert st[schema.INTERFEROGRAM].dims == (schema.SAMPLE, "time", schema.BAND, "y", "x")
    starts = list(pd.DatetimeIndex(cube.start_date.values))
    delays = list(cube.delay.values)
    values = st[schema.INTERFEROGRAM].values
    for n in range(patches.sizes[schema.SAMPLE]):
        loc = int(patches.location.values[n])
        r, c = int(patches.row.values[n]), int(patches.col.values[n])
        i = starts.index(pd.Timestamp(patches.start_date.values[n]))
        j = delays.index(int(patches.delay.values[n]))
        expect_valid = cst.valid.values[i, j].copy()
        for t in range(st.sizes["time"]):
            mi = starts.index(pd.Timestamp(cst.member_start_date.values[i, j, t]))
            mj = delays.index(int(cst.member_delay.values[i, j, t]))
            if (loc, mi, mj) in drop:
                expect_valid[t] = False
        np.testing.assert_array_equal(st.valid.values[n], expect_valid)
        window = cst[schema.INTERFEROGRAM].values[i, j, :, :, r:r + size, c:c + size]
        np.testing.assert_array_equal(values[n][expect_valid], window[expect_valid])
        assert np.isnan(values[n][~expect_valid]).all()


def test_patch_member_index_rejects_duplicates():
    cube = make_cube()
    p = make_patches(cube, locations=((10, 12),))
    p = p.assign_coords(location=("sample", np.zeros(p.sizes["sample"], int)))
    doubled = __import__("xarray").concat([p, p], "sample")
    with pytest.raises(schema.PatchesError, match="repeat"):
        patch_member_index(doubled, "start")


def test_accessor_stack_forwards_to_stack_cube_and_stack_patches():
    cube = make_cube()
    via_accessor = cube.isslide.stack("start")
    direct = stack_cube(cube, "start")
    xr.testing.assert_identical(via_accessor, direct)
    patches = make_patches(cube)
    xr.testing.assert_identical(patches.isslide.stack("end"), stack_patches(patches, "end"))
    assert "time" not in cube.dims  # the accessor never mutates its object
