"""A move table against the synthetic generator's truth (``truth/moves.csv``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def _active_throughout(table: pd.DataFrame, periods: pd.Series) -> np.ndarray:
    """Rows whose [start_date, end_date] lies inside one ``start/end;start/end`` period."""
    import pandas as pd

    spans = {k: [tuple(pd.Timestamp(x) for x in p.split("/")) for p in str(v).split(";") if "/" in p]
             for k, v in periods.items()}
    return np.array([any(a <= s and e <= b for a, b in spans.get(k, ()))
                     for k, s, e in zip(table["move_id"], table["start_date"], table["end_date"],
                                        strict=True)], dtype=bool)


def truth_ambiguous(table: pd.DataFrame, truth: pd.DataFrame,
                    margin: float = 0.8) -> np.ndarray:
    """Rows whose true peak LOS motion may exceed ``margin`` x half a fringe (phase pi).

    Uses the truth's ``fringes_<d>d`` columns (peak fringes over ``d`` days when
    active throughout: an upper bound of the motion of any row of that delay).
    A wrapped phase cannot show on its own that it wrapped, so on synthetic data
    this is the honest meaning of "without fringe ambiguity". Rows of a delay
    with no such column count as ambiguous.
    """
    fringes = np.full(len(table), np.inf)
    by_move = truth.set_index("move_id")
    for d in np.unique(table["delay"]):
        col = f"fringes_{int(d)}d"
        if col in by_move.columns:
            rows = (table["delay"] == d).to_numpy()
            fringes[rows] = table.loc[rows, "move_id"].map(by_move[col]).to_numpy(float)
    # one fringe = phase 2 pi; half a fringe = phase pi
    return ~(np.abs(fringes) * 2.0 < margin)


def compare_with_truth(table: pd.DataFrame, truth: pd.DataFrame | str,
                       velocity_column: str | None = None, *, how: str = "stack",
                       truth_margin: float | None = 0.8) -> pd.DataFrame:
    """Estimated velocity per move against a truth table (``truth/moves.csv``).

    Only rows without fringe ambiguity count. When the truth has
    ``fringes_<d>d`` columns and ``truth_margin`` is set, that is decided by
    :func:`truth_ambiguous` (the true peak motion stays under ``truth_margin`` x
    half a fringe) and the table's own ``ambiguous`` flag is not used: the flag
    looks at the noisy estimate itself, and dropping the rows whose noise pushed
    the estimate up truncates the noise and biases the mean low (a -0.13 m/yr
    move of the ``tiny`` preset read 24 % low that way, 12 % without). Otherwise
    the table's flag decides. When the truth has an ``active_periods``
    column (``start/end`` ISO pairs joined by ``;``), only interferograms during
    which the move was active throughout count (otherwise the motion over the
    delay is less than velocity x delay).

    Parameters
    ----------
    table
        Output of :func:`move_time_series` (moves identified by ``move_id``).
    truth
        ``truth/moves.csv`` of a synthetic dataset (or its DataFrame) with a
        ``move_id`` column and a LOS velocity column in m/yr.
    velocity_column
        That column's name; guessed (``los_velocity_m_per_yr``, ...) when None.
    how
        ``"stack"`` (default): the sum of the rows' core phases over the sum of
        their delays, InSAR stacking, which weights the longer (higher
        signal-to-noise) delays more and lets the atmosphere of the shared
        dates cancel along a chain of consecutive interferograms; ``"median"``:
        the median of the rows' velocities (robust to a few bad rows).
    truth_margin
        Margin of :func:`truth_ambiguous`; None uses the table's flag instead.

    Returns
    -------
    pandas.DataFrame
        ``move_id, velocity_true, velocity_est, n_rows, relative_error``, one
        row per move with at least one usable interferogram.

    Example
    -------
    >>> cmp = compare_with_truth(table, "raw/truth/moves.csv")  # doctest: +SKIP
    >>> int((cmp.relative_error < 0.2).sum())  # doctest: +SKIP
    """
    import pandas as pd

    if how not in ("stack", "median"):
        raise ValueError(f"how={how!r}: use 'stack' or 'median'")
    truth = pd.read_csv(truth) if not isinstance(truth, pd.DataFrame) else truth
    if velocity_column is None:
        cands = [c for c in truth.columns if "velocity" in c.lower()]
        los = [c for c in cands if "los" in c.lower()]
        if not cands:
            raise ValueError(f"no velocity column in the truth table ({list(truth.columns)}); "
                             "pass velocity_column=")
        velocity_column = (los or cands)[0]
    if truth_margin is not None and any(c.startswith("fringes_") for c in truth.columns):
        ok = table[~truth_ambiguous(table, truth, truth_margin)]
    else:
        ok = table[~table["ambiguous"].astype(bool)]
    if "active_periods" in truth.columns:
        ok = ok[_active_throughout(ok, truth.set_index("move_id")["active_periods"])]
    groups = ok.groupby("move_id")
    if how == "median":
        v = groups["velocity_m_per_yr"].median()
    else:
        # phase = velocity * delay (up to constants): sum(phase) / sum(delay)
        days = (ok["delay"] if "delay" in ok.columns
                else (ok["end_date"] - ok["start_date"]).dt.days)
        v = ((ok["velocity_m_per_yr"] * days).groupby(ok["move_id"]).sum()
             / days.groupby(ok["move_id"]).sum())
    est = pd.DataFrame({"velocity_est": v, "n_rows": groups.size()})
    merged = truth[["move_id", velocity_column]].merge(est, left_on="move_id", right_index=True)
    merged = merged.rename(columns={velocity_column: "velocity_true"})
    merged["relative_error"] = ((merged["velocity_est"] - merged["velocity_true"]).abs()
                                / merged["velocity_true"].abs())
    return merged.reset_index(drop=True)
