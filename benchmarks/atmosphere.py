"""The synthetic atmosphere against a published structure function (a calibration check).

Emardson et al. (2003, JGR 108(B5), GPS zenith delays of the Southern California
network) found that an interferogram's tropospheric delay between two points ``L``
km apart has a standard deviation of about ``2.5 mm * L**0.5`` (zenith; ``/cos 39
deg`` along a Sentinel-1 line of sight). This draws interferogram delay screens
(two acquisitions of ``make_acquisitions``, the turbulent part: flat terrain) on a
preset's grid and prints the median and range, over the screens, of the RMS delay
difference at each lag, in mm and in C-band radians, beside Emardson's value and
the ratio of the two.

Run: ``.venv/bin/python -m benchmarks.atmosphere [--screens N]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from isslide_cube.synthetic import atmosphere
from isslide_cube.synthetic.presets import get_preset

WAVELENGTH_M = 0.055466
GRIDS = {  # (rows, cols, spacing m, screen coarsening): the tiny preset and a paper-like tile
    "tiny (256 px, 30 m, screens at 30 m)": (256, 256, 30.0, 1),
    "paper tile (1024 px, 30 m, screens at 120 m)": (1024, 1024, 30.0, 4),
}
LAGS_M = (60, 150, 300, 600, 1200, 3000, 6000, 12000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--screens", type=int, default=16, help="interferograms per grid")
    args = parser.parse_args(argv)
    preset = get_preset("paper")
    print(f"turbulent std per acquisition U{tuple(preset.atmosphere_std_range)} m, "
          f"spectrum k^-{atmosphere.TURBULENCE_BETA:g}, outer {atmosphere.OUTER_SCALE_M / 1e3:g} km, "
          f"inner {atmosphere.INNER_SCALE_M:g} m; {args.screens} interferograms per grid")
    rng = np.random.default_rng(0)
    to_rad = 4 * np.pi / WAVELENGTH_M
    for name, (ny, nx, spacing, factor) in GRIDS.items():
        lags_m = np.array([lag for lag in LAGS_M if lag < ny * spacing / 2])
        lags_px = [int(round(lag / spacing)) for lag in lags_m]
        stds = []
        for _ in range(args.screens):
            first, second = atmosphere.make_acquisitions(2, (ny, nx), (spacing, spacing), rng,
                                                         preset.atmosphere_std_range, 0.0, factor)
            flat = np.zeros((ny, nx), np.float32)
            stds.append(atmosphere.structure_std(
                atmosphere.delay_difference(first, second, flat, 0.0), lags_px))
        stds = np.array(stds)
        ref = atmosphere.emardson_std(lags_m)
        print(f"\n{name}")
        print(f"  {'lag m':>6} {'ours mm [range]':>22} {'ours rad':>9} {'Emardson mm':>12} "
              f"{'rad':>6} {'ours / Emardson':>16}")
        for lag, med, lo, hi, e in zip(lags_m, np.median(stds, 0), stds.min(0), stds.max(0), ref,
                                       strict=True):
            print(f"  {lag:6d} {med * 1e3:8.2f} [{lo * 1e3:5.2f}-{hi * 1e3:5.2f}] "
                  f"{med * to_rad:9.2f} {e * 1e3:12.2f} {e * to_rad:6.2f} {med / e:16.2f}")


if __name__ == "__main__":
    main()
