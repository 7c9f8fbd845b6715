"""Dates and roles from file names and GDAL tags."""

from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isslide_cube.io import names

T = pd.Timestamp


@pytest.mark.parametrize("name, first, second", [
    ("S1_20180702_20180708.tif", "2018-07-02", "2018-07-08"),
    ("cropA_20180106-20180130_VV_8rlks_eqa_unw.tif", "2018-01-06", "2018-01-30"),
    ("cropA_20180106-20180130_VV_8rlks_flat_eqa_cc.tif", "2018-01-06", "2018-01-30"),
    ("20180106_20180130.geo.diff_pha.tif", "2018-01-06", "2018-01-30"),
    ("Phase_ifg_VV_06Jul2018_12Jul2018.img", "2018-07-06", "2018-07-12"),
    ("coh_VV_06JUL2018_12JUL2018.img", "2018-07-06", "2018-07-12"),
    ("ifg_2018-07-06_2018-07-12_phase.tif", "2018-07-06", "2018-07-12"),
    ("x_20180106--20180130.tif", "2018-01-06", "2018-01-30"),
    ("S1AA_20180106T002033_20180130T002033_VVP024_INT80_G_ueF_5A3C_unw_phase.tif",
     "2018-01-06", "2018-01-30"),
    # a product name in front of the pair: the pair wins
    ("S1A_IW_SLC__1SDV_20180706T054012_20180706T054039_022660_ifg_06Jul2018_12Jul2018.data",
     "2018-07-06", "2018-07-12"),
    # the order is the name's: the caller rejects second <= first
    ("S1_20180708_20180702.tif", "2018-07-08", "2018-07-02"),
])
def test_parse_dates(name, first, second):
    assert names.parse_dates(name) == (T(first), T(second))


@pytest.mark.parametrize("name", [
    "dem.tif", "layover.tif", "cropA_T005A_dem.tif", "073D_13256_001823.geo.hgt.tif",
    # Sentinel-1 product names: dates glued to times are not an interferogram's pair
    "S1A_IW_SLC__1SDV_20180706T054012_20180706T054039_022660_0274A3.tif",
    "S1_20181332_20181340.tif",  # not calendar dates
    "orbit_12345678_87654321.tif",  # eight digits, implausible years
    "S1_2018070_20180708.tif",
])
def test_parse_dates_none(name):
    assert names.parse_dates(name) is None


@pytest.mark.parametrize("name, role", [
    ("cropA_20180106-20180130_VV_8rlks_eqa_unw.tif", names.UNWRAPPED_PHASE),
    ("cropA_20180106-20180130_VV_8rlks_flat_eqa_cc.tif", names.COHERENCE),
    ("20180106_20180130.geo.diff_pha.tif", names.PHASE),
    ("20180106_20180130.geo.unw.tif", names.UNWRAPPED_PHASE),
    ("20180106_20180130.geo.cc.tif", names.COHERENCE),
    ("Phase_ifg_VV_06Jul2018_12Jul2018.img", names.PHASE),
    ("coh_VV_06Jul2018_12Jul2018.img", names.COHERENCE),
    ("coherence_20180702_20180708.tif", names.COHERENCE),
    ("phase_20180702_20180708.tif", names.PHASE),
    ("S1AA_20180106T002033_20180130T002033_VVP024_INT80_G_ueF_5A3C_unw_phase.tif",
     names.UNWRAPPED_PHASE),
    ("S1AA_20180106T002033_20180130T002033_VVP024_INT80_G_ueF_5A3C_wrapped_phase.tif",
     names.PHASE),
    ("S1AA_20180106T002033_20180130T002033_VVP024_INT80_G_ueF_5A3C_corr.tif", names.COHERENCE),
    ("S1AA_20180106T002033_20180130T002033_VVP024_INT80_G_ueF_5A3C_amp.tif", None),
    ("i_ifg_VV_06Jul2018_12Jul2018.img", None),
    ("q_ifg_VV_06Jul2018_12Jul2018.img", None),
    ("S1_20180702_20180708.tif", None),
    ("dem.tif", None),
    ("phase_and_coherence_20180702_20180708.tif", None),  # ambiguous
    ("Coherent_stuff.tif", None),  # a word must match, not a prefix
])
def test_parse_role(name, role):
    assert names.parse_role(name) == role


@pytest.mark.parametrize("tags, expected", [
    ({"FIRST_DATE": "2018-01-06", "SECOND_DATE": "2018-01-30"}, ("2018-01-06", "2018-01-30")),
    ({"MASTER_DATE": "20180106", "SLAVE_DATE": "20180130"}, ("2018-01-06", "2018-01-30")),
    ({"reference_date": "2018-01-06T00:40:21", "secondary_date": "2018-01-30"},
     ("2018-01-06", "2018-01-30")),
    ({"FIRST_DATE": "2018-01-06"}, None),
    ({"FIRST_DATE": "soon", "SECOND_DATE": "later"}, None),
    ({}, None),
])
def test_dates_from_tags(tags, expected):
    got = names.dates_from_tags(tags)
    assert got == (None if expected is None else tuple(T(e) for e in expected))


def test_band_roles():
    assert names.band_roles(("coherence", "phase")) == {"coherence": 1, "phase": 2}
    assert names.band_roles(("phase", "coherence")) == {"coherence": 2, "phase": 1}
    assert names.band_roles((None, None)) == {}
    assert names.band_roles(("phase", "phase")) == {}


def test_understood_names_mentions_every_form():
    text = names.understood_names()
    for word in ("YYYYMMDD", "DDMonYYYY", "FIRST_DATE", "MASTER_DATE", "unw", "diff_pha",
                 "Phase_ifg", "coh", "cc", "coherence"):
        assert word in text


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1991, 1, 1), max_value=date(2099, 12, 1)),
       st.integers(1, 400),
       st.sampled_from(["{a:%Y%m%d}_{b:%Y%m%d}", "{a:%Y%m%d}-{b:%Y%m%d}",
                        "{a:%d%b%Y}_{b:%d%b%Y}", "{a:%Y-%m-%d}_{b:%Y-%m-%d}",
                        "{a:%Y%m%d}T012345_{b:%Y%m%d}T012345"]),
       st.sampled_from(["S1_{}.tif", "cropA_{}_VV_8rlks_eqa_unw.tif", "{}.geo.cc.tif",
                        "Phase_ifg_VV_{}.img", "S1AA_{}_VVP024_INT80_G_ueF_5A3C_corr.tif"]))
def test_parse_dates_round_trip(first, days, form, template):
    second = first + timedelta(days=days)
    name = template.format(form.format(a=first, b=second))
    assert names.parse_dates(name) == (T(first), T(second))
