"""Coherence: decay with the delay per land cover, in the model and in the written files."""

import numpy as np
import pytest
import rasterio

from isslide_cube import schema
from isslide_cube.synthetic import coherence, terrain
from isslide_cube.synthetic.generator import TRUTH_COHERENCE, TRUTH_LANDCOVER


def test_cover_ordering_and_decay():
    for d in (6, 12, 18):
        g = {c: coherence.temporal_coherence(c, d) for c in coherence.COVER_PARAMS}
        assert g[terrain.ROCK] > g[terrain.MEADOW] > g[terrain.FOREST]
        assert g[terrain.SNOW] < 0.3 and g[terrain.FOREST] < 0.3
        assert g[terrain.WATER] == 0.0
        assert g[terrain.ROCK] > 0.75
    for c in (terrain.FOREST, terrain.MEADOW, terrain.ROCK, terrain.SNOW):
        vals = [coherence.temporal_coherence(c, d) for d in (0, 6, 12, 18, 60)]
        assert np.all(np.diff(vals) < 0)


def test_layover_and_shadow_values():
    cover = np.full((4, 4), terrain.ROCK, dtype="uint8")
    lay = np.zeros((4, 4), bool)
    lay[0] = True
    sha = np.zeros((4, 4), bool)
    sha[1] = True
    g = coherence.true_coherence(cover, 6, (1.0, 1.0), np.ones((4, 4), "float32"), lay, sha)
    assert np.all(g[0] == np.float32(coherence.LAYOVER_COHERENCE))
    assert np.all(g[1] == 0.0)
    assert np.all(g[2:] == pytest.approx(coherence.temporal_coherence(terrain.ROCK, 6)))


def test_fringe_gradient_decorrelates():
    f = coherence.gradient_decorrelation(np.array([0.0, np.pi / 2, np.pi, 2 * np.pi]))
    assert f[0] == 1.0 and f[0] > f[1] > f[2] > f[3]


def _per_delay_means(raw, band_from):
    with rasterio.open(raw / TRUTH_LANDCOVER) as src:
        cover = src.read(1)
    out = {}
    for tif in sorted((raw / schema.RAW_INTERFEROGRAMS).glob("*.tif")):
        with rasterio.open(tif) as src:
            delay = (np.datetime64(src.tags()[schema.TAG_SECOND_DATE])
                     - np.datetime64(src.tags()[schema.TAG_FIRST_DATE])).astype(int)
        path = tif if band_from == "band" else raw / TRUTH_COHERENCE / tif.name
        with rasterio.open(path) as src:
            g = src.read(1)
        for c in (terrain.FOREST, terrain.MEADOW, terrain.ROCK):
            sel = (cover == c) & np.isfinite(g)
            if sel.sum() > 50:
                out.setdefault((c, int(delay)), []).append(float(np.nanmean(g[sel])))
    return {k: np.mean(v) for k, v in out.items()}


@pytest.mark.parametrize("band_from", ["truth", "band"])
def test_written_coherence_decays_with_delay_per_cover(tiny_raw, band_from):
    means = _per_delay_means(tiny_raw, band_from)
    print({f"{terrain.COVER_NAMES[c]}@{d}d": round(v, 3) for (c, d), v in sorted(means.items())})
    for c in (terrain.MEADOW, terrain.ROCK):
        if (c, 6) in means and (c, 18) in means:
            assert means[(c, 6)] > means[(c, 12)] > means[(c, 18)]
    if (terrain.ROCK, 18) in means and (terrain.FOREST, 18) in means:
        assert means[(terrain.ROCK, 18)] > means[(terrain.FOREST, 18)] + 0.2
