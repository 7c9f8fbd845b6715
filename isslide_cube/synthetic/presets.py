"""Presets of the synthetic generator: grid, dates, pairs, moves and their distributions.

Why these numbers
-----------------
The ``paper`` preset aims at the counts of the ISSLIDE paper (DESIGN.md section 1):
20 acquisitions every 6 days from 2018-07-02, pairs at 6/12/18 days (54 interferograms),
200 moves over Vanoise (north), Ecrins (middle), Queyras (south) and the rest of the
scene, on a 1 arc-second grid (~31 m north-south, ~22 m east-west at 45 deg N) covering
lon 6.0-7.2, lat 44.5-45.6 (4320 x 3960 px).

The size and activity distributions are set so that a greedy 100 x 100 px covering of
the union of all annotations gives roughly the paper's 245 patch locations and a
two-thirds share of (location, interferogram) patches showing a move:

* velocities are log-uniform over ``velocity_range`` (2 cm/yr - 5 m/yr), drawn by
  stratified sampling so every decade is represented even with a dozen moves; about
  a fifth of the moves (< ~5 cm/yr) never exceed the visibility floor in 18 days and
  stay unannotated, as slow moves are in real 6-18-day interferograms;
* radii are log-uniform over ``radius_range`` (100 m - 2 km); a share
  ``elongated_fraction`` of the landslides are long tongues of ``elongated_length``
  (3-6 km) by 0.15-0.35 of that in width: those span 2-3 patches, which with the
  large round moves brings ~1.4 patch locations per annotated move;
* ``zone_weights`` put about a third of the moves (and of the locations) in Queyras
  (0.40 of the moves for ``paper``, whose Queyras moves are smaller rock glaciers);
* activity is a two-state Markov chain over the 6-day intervals with a stationary
  active share ``p_on / (p_on + p_off)`` (0.8 by default, 0.71 for ``paper``), so that
  together with the velocity floor and coherence losses a move is annotated on about
  two thirds of the interferograms of its location;
* ``paper`` also has 70 % of its landslides elongated (3.5-7 km) and moves three times
  less likely to be centred in forest (where 12-18-day decorrelation hides them from
  annotators).

Measured with ``benchmarks.patches_counts --simulate paper`` (the generator's annotation
path replayed, 100 px patches, seed 0): the defaults gave 171 locations, 9,234 patches,
71 % with a move, 31 % of locations in Queyras; the calibrated ``paper`` preset gives
243 locations, 13,122 patches, 8,522 (65 %) with a move, 4,600 without, 4,579 train /
558 eval, 83 locations (34 %) in Queyras (paper: 245, 13,230, 8,701 (66 %), 4,529,
4,821 / 572): the largest gap is train's, -5.0 %.

Goldstein window
----------------
SNAP's chain (DESIGN.md section 1: "... topographic phase removal, Goldstein filtering,
8 x 2 multilooking (range x azimuth), orthorectification") filters the *single-look*
IW grid, about 3.7 m (ground range) x 14 m (azimuth), with 64 x 64 px blocks
(~240 m x ~900 m). The generator filters its multilooked output grid (1 arc-second,
~22-31 m), where the same 64 px would span ~1.4-2 km, 8 x too wide in range and 2 x in
azimuth, and erased most of a small move's phase (benchmarks/RESULTS.md, "Goldstein
window"). The SLC-equivalent block is 64 / 8 = 8 columns (range, roughly east-west on a
descending pass) by 64 / 2 = 32 rows (azimuth, north-south), stepped 4 x 16 (50 %
overlap, as SNAP's default). The 3 x 3 spectral smoothing stays 3 bins: one bin of an
8 px x ~30 m block is 1 / 240 m^-1, the bin of SNAP's 64 px x 3.7 m block, so 3 bins is
the same smoothing in ground frequency as SNAP's (coarse relative to the 8-bin spectrum
only because the multilooked grid has no frequencies beyond its Nyquist to smooth).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from isslide_cube.schema import IsslideError
from isslide_cube.synthetic import atmosphere


class PresetError(IsslideError, ValueError):
    """Unknown preset name, or a preset field that does not exist."""


@dataclass(frozen=True)
class Preset:
    """Everything that defines one synthetic raw dataset but the seed.

    Parameters
    ----------
    name
        Preset name.
    bounds
        (west, south, east, north) in degrees (EPSG:4326).
    resolution_deg
        Pixel size in degrees (1 arc-second = 1/3600).
    n_dates, start, step_days, delays
        Acquisitions every ``step_days`` from ``start``; one interferogram for every pair
        of acquisitions ``delay`` days apart for each delay.
    n_moves
        Number of moving areas.
    zone_boxes
        Zone name -> (x0, y0, x1, y1) as fractions of the extent (x east, y north).
    goldstein_alpha, goldstein_window, goldstein_step
        Goldstein filter exponent (0 = off), block and step in output pixels,
        ``(rows, cols)`` or an int for square (see the module docstring).
    """

    name: str
    bounds: tuple[float, float, float, float]
    resolution_deg: float = 1.0 / 3600.0
    n_dates: int = 8
    start: str = "2018-07-02"
    step_days: int = 6
    delays: tuple[int, ...] = (6, 12, 18)
    n_moves: int = 12
    radius_range: tuple[float, float] = (100.0, 2000.0)
    elongated_fraction: float = 0.15
    elongated_length: tuple[float, float] = (3000.0, 6000.0)
    velocity_range: tuple[float, float] = (0.02, 5.0)
    class_weights: tuple[float, float, float] = (0.55, 0.30, 0.15)
    zone_weights: dict[str, float] = field(default_factory=lambda: {
        "vanoise": 0.25, "ecrins": 0.25, "queyras": 0.35, "other": 0.15})
    zone_boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=lambda: {
        "vanoise": (0.45, 0.62, 0.88, 0.94),
        "ecrins": (0.08, 0.33, 0.45, 0.60),
        "queyras": (0.55, 0.04, 0.94, 0.36),
    })
    p_on: float = 0.6
    p_off: float = 0.15
    looks: int = 16
    goldstein_alpha: float = 1.0
    #: (rows, cols) on the output grid: SNAP's 64 x 64 single-look block after 8 x 2
    #: (range x azimuth) multilooking (module docstring, "Goldstein window")
    goldstein_window: int | tuple[int, int] = (32, 8)
    goldstein_step: int | tuple[int, int] = (16, 4)
    #: per-acquisition turbulent std (m) at the outer scale; stratified K std (m/m); both
    #: calibrated on Emardson et al. 2003 (``synthetic.atmosphere`` docstring)
    atmosphere_std_range: tuple[float, float] = atmosphere.STD_RANGE
    stratified_std: float = atmosphere.STRATIFIED_STD
    relief_slope_deg: float = 27.0
    mean_elevation: float = 2100.0
    nodata_corner: float = 0.06
    atmosphere_factor: int = 4
    truth_coherence: bool = True  # write truth/coherence/<pair>.tif (off at paper scale)
    forest_weight: float = 1.0  # relative odds of a move centred in forest (hidden by decorrelation)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid."""
        west, south, east, north = self.bounds
        return (round((north - south) / self.resolution_deg),
                round((east - west) / self.resolution_deg))


def _tiny() -> Preset:
    # 256 x 256 px (~5.6 x 7.9 km): moves smaller so that each zone holds some.
    res = 1.0 / 3600.0
    west, south = 6.62, 44.90
    return Preset(
        name="tiny", bounds=(west, south, west + 256 * res, south + 256 * res),
        n_dates=8, n_moves=14, radius_range=(100.0, 450.0), elongated_fraction=0.2,
        elongated_length=(900.0, 1500.0), velocity_range=(0.02, 5.0),
        zone_boxes={"vanoise": (0.5, 0.52, 0.98, 0.98), "ecrins": (0.02, 0.52, 0.48, 0.98),
                    "queyras": (0.5, 0.02, 0.98, 0.48)},
        zone_weights={"vanoise": 0.27, "ecrins": 0.27, "queyras": 0.27, "other": 0.19},
        atmosphere_factor=1,
    )


def _small() -> Preset:
    res = 1.0 / 3600.0
    west, south = 6.45, 44.80
    return Preset(
        name="small", bounds=(west, south, west + 768 * res, south + 768 * res),
        n_dates=10, n_moves=36, radius_range=(100.0, 1200.0), elongated_fraction=0.15,
        elongated_length=(1500.0, 3000.0), atmosphere_factor=2,
    )


def _paper() -> Preset:
    # Calibrated on the annotation path alone (benchmarks.patches_counts --simulate paper):
    # with the defaults, 171 locations and 71 % of patches with a move; more long
    # landslides, fewer moves hidden in forest, more inactivity and more Queyras moves
    # give 243 locations, 65 % with a move, 34 % in Queyras, 4,579 / 558
    # train / eval (paper: 245, 66 %, ~1/3, 4,821 / 572).
    return Preset(name="paper", bounds=(6.0, 44.5, 7.2, 45.6), n_dates=20, n_moves=200,
                  truth_coherence=False, elongated_fraction=0.7,
                  elongated_length=(3500.0, 7000.0), forest_weight=0.3, p_on=0.48, p_off=0.2,
                  zone_weights={"vanoise": 0.24, "ecrins": 0.23, "queyras": 0.40, "other": 0.13})


PRESETS: dict[str, Preset] = {p.name: p for p in (_tiny(), _small(), _paper())}


def get_preset(preset: str | Preset, **overrides) -> Preset:
    """Return a preset by name (or as given) with ``overrides`` applied.

    Raises
    ------
    PresetError
        For an unknown name (the message lists the valid ones) or an unknown field.

    Examples
    --------
    >>> get_preset("tiny").shape
    (256, 256)
    >>> get_preset("tiny", goldstein_alpha=0.0).goldstein_alpha
    0.0
    """
    if isinstance(preset, Preset):
        base = preset
    else:
        if preset not in PRESETS:
            raise PresetError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        base = PRESETS[preset]
    unknown = sorted(set(overrides) - set(base.__dataclass_fields__))
    if unknown:
        raise PresetError(f"unknown preset field(s) {unknown}; valid fields: "
                          f"{', '.join(base.__dataclass_fields__)}")
    return replace(base, **overrides) if overrides else base
