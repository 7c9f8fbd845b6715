"""The train / eval / unused split of a patches dataset, with a leak check."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from isslide_cube import schema as s
from isslide_cube.patches._common import SCHEMES
from isslide_cube.schema import PatchesError

log = logging.getLogger("isslide_cube.patches")


def _ifg_codes(patches: xr.Dataset) -> tuple[np.ndarray, int]:
    keys = pd.MultiIndex.from_arrays([patches[s.START_DATE].values, patches[s.DELAY].values])
    codes, uniques = pd.factorize(keys, sort=True)
    return np.asarray(codes), len(uniques)


def _empty_side_error(scheme: str, side: str, zones: np.ndarray, has_move: np.ndarray,
                      eval_zones: Sequence[str], detail: str) -> PatchesError:
    per_zone = ", ".join(
        f"{z}: {int((zones == z).sum())} patches ({int(((zones == z) & has_move).sum())} with a move)"
        for z in sorted(set(zones.tolist())))
    return PatchesError(
        f"split {scheme!r}: the {side} side would be empty ({detail}); eval_zones="
        f"{tuple(eval_zones)}; patches per zone: {per_zone or 'none'}. Choose eval_zones among "
        f"the zones that hold patches, another train_fraction or seed, or split='none'.")


def split(patches: xr.Dataset, scheme: str = "paper", seed: int = 0,
          train_fraction: float = 0.8, eval_zones: Sequence[str] = ("queyras",), *,
          moving_only: bool = True) -> xr.Dataset:
    """Label every patch ``train``, ``eval`` or ``unused`` (a new ``split`` coordinate).

    Schemes:

    ``paper``
        By interferogram: ``round(train_fraction * n)`` interferograms drawn with
        ``np.random.default_rng(seed)`` train on the locations outside
        ``eval_zones``; the other interferograms evaluate on the locations in
        ``eval_zones``. No interferogram and no location is on both sides.
    ``temporal``
        The first ``round(train_fraction * n)`` start dates train, the later ones
        evaluate; a training interferogram that ends after the first evaluation
        date is ``unused`` so the two sides never overlap in time.
    ``spatial``
        Locations outside ``eval_zones`` train, inside evaluate, on every
        interferogram.

    With ``moving_only`` (the single-interferogram study) patches without a
    move are ``unused`` on both sides; every patch stays in the dataset.

    Parameters
    ----------
    patches
        From :func:`extract_patches` or :func:`open_patches` (not mutated).
    scheme, seed, train_fraction, eval_zones, moving_only
        As above.

    Returns
    -------
    xarray.Dataset
        ``patches`` with a ``split`` coordinate (str along ``sample``) whose
        attrs record the scheme and its parameters.

    Raises
    ------
    PatchesError
        Unknown scheme or zone, a fraction outside (0, 1), an empty train or
        eval side (the message gives the counts per zone), or a leak.

    Example
    -------
    >>> labelled = split(patches, "paper", seed=0)           # doctest: +SKIP
    >>> split_counts(labelled).loc["eval", "patches"]         # doctest: +SKIP
    572
    """
    if scheme not in SCHEMES[:-1]:
        raise PatchesError(f"unknown split scheme {scheme!r}; use one of {SCHEMES[:-1]}")
    if not 0.0 < float(train_fraction) < 1.0:
        raise PatchesError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    eval_zones = (eval_zones,) if isinstance(eval_zones, str) else tuple(eval_zones)
    zones = np.asarray(patches[s.ZONE].values).astype(str)
    unknown = sorted(set(eval_zones) - set(s.ZONES) - set(zones.tolist()))
    if unknown:
        raise PatchesError(f"unknown eval zone(s) {unknown}; zones are {s.ZONES}")
    has_move = np.asarray(patches[s.HAS_MOVE].values, dtype=bool)
    in_eval = np.isin(zones, eval_zones)
    codes, n_ifg = _ifg_codes(patches)
    start = np.asarray(patches[s.START_DATE].values)
    if scheme == "paper":
        rng = np.random.default_rng(seed)
        n_train = int(round(train_fraction * n_ifg))
        train_ifg = np.zeros(n_ifg, dtype=bool)
        train_ifg[rng.permutation(n_ifg)[:n_train]] = True
        train, evaluate = train_ifg[codes] & ~in_eval, ~train_ifg[codes] & in_eval
        detail = f"{n_train} train / {n_ifg - n_train} held-out interferograms"
    elif scheme == "temporal":
        dates = np.unique(start)
        n_train = int(round(train_fraction * len(dates)))
        if not 0 < n_train < len(dates):
            raise PatchesError(f"split 'temporal' needs at least 2 start dates, got {len(dates)}")
        cutoff = dates[n_train]
        end = np.asarray(patches[s.END_DATE].values)
        train, evaluate = (start < cutoff) & (end <= cutoff), start >= cutoff
        detail = f"train before {pd.Timestamp(cutoff):%Y-%m-%d}, eval from it"
    else:
        train, evaluate = ~in_eval, in_eval
        detail = "by zone"
    if moving_only:
        train, evaluate = train & has_move, evaluate & has_move
    for side, chosen in (("train", train), ("eval", evaluate)):
        if not chosen.any():
            raise _empty_side_error(scheme, side, zones, has_move, eval_zones, detail)
    labels = np.full(zones.shape, "unused", dtype="<U6")
    labels[train], labels[evaluate] = "train", "eval"
    _leak_check(scheme, labels, codes, np.asarray(patches[s.LOCATION].values))
    attrs = {"scheme": scheme, "seed": int(seed), "train_fraction": float(train_fraction),
             "eval_zones": list(eval_zones), "moving_only": int(moving_only)}
    out = patches.assign_coords({s.SPLIT: (s.SAMPLE, labels, attrs)})
    counts = split_counts(out)
    log.info("split %r (%s):\n%s", scheme, detail, counts.to_string())
    return out


def _leak_check(scheme: str, labels: np.ndarray, ifg: np.ndarray, loc: np.ndarray) -> None:
    forbidden = {"paper": ("interferogram", "location"), "temporal": ("interferogram",),
                 "spatial": ("location",)}[scheme]
    for name, key in (("interferogram", ifg), ("location", loc)):
        if name in forbidden:
            both = np.intersect1d(key[labels == "train"], key[labels == "eval"])
            if both.size:
                raise PatchesError(f"split {scheme!r} leaks: {both.size} {name}(s) on both train "
                                   f"and eval (e.g. {name} index {both[0]})")


def split_counts(patches: xr.Dataset) -> pd.DataFrame:
    """Patches, with/without a move, locations and interferograms per split side.

    Example
    -------
    >>> split_counts(split(patches))                        # doctest: +SKIP
            patches  with_move  without_move  locations  interferograms
    train      4821       4821             0        160              43
    """
    labels = np.asarray(patches[s.SPLIT].values).astype(str)
    has_move = np.asarray(patches[s.HAS_MOVE].values, dtype=bool)
    codes, _ = _ifg_codes(patches)
    loc = np.asarray(patches[s.LOCATION].values)
    rows = {}
    for side in s.SPLIT_VALUES:
        sel = labels == side
        rows[side] = {"patches": int(sel.sum()), "with_move": int((sel & has_move).sum()),
                      "without_move": int((sel & ~has_move).sum()),
                      "locations": len(np.unique(loc[sel])),
                      "interferograms": len(np.unique(codes[sel]))}
    return pd.DataFrame.from_dict(rows, orient="index")
