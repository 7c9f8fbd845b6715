"""Building a cube: :func:`build_cube` plans, writes the template, runs one task
per interferogram on Dask, and sets the completion flag last.

The stages live beside this module: :mod:`._plan` (inputs found and checked),
:mod:`._resume` (fingerprint, resume or refuse), :mod:`._template` (the
store's skeleton), :mod:`._write` and :mod:`._mask` (one interferogram's task),
:mod:`._open` (the readers).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isslide_cube import schema
from isslide_cube.cube._mask import _shapes_by_pair
from isslide_cube.cube._plan import _Plan, _plan
from isslide_cube.cube._resume import _store_state, _todo
from isslide_cube.cube._store import ANNOTATED, CRASH_ENV, DONE, _du, _Job, _set_attrs
from isslide_cube.cube._template import _write_template
from isslide_cube.cube._write import _write_interferogram
from isslide_cube.schema import CubeError, RawDataError

log = logging.getLogger(__package__)


@dataclass
class BuildSummary:
    """What :func:`build_cube` left in the store (``str()`` gives a readable report)."""

    store: Path
    interferograms: int
    dates: int
    start_dates: int
    delays: tuple[int, ...]
    grid: Any
    size_bytes: int
    annotated_pixels: int | None
    written: int
    resumed: bool
    seconds: float
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __str__(self) -> str:
        g = self.grid
        crs = g.crs.to_epsg() and f"EPSG:{g.crs.to_epsg()}" or g.crs.to_string()[:60]
        lines = [
            f"cube {self.store}",
            f"  interferograms: {self.interferograms} ({self.written} written by this run"
            f"{', resumed' if self.resumed else ''}, {self.seconds:.1f} s)",
            f"  dates: {self.dates} acquisitions, {self.start_dates} start dates",
            f"  delays (days): {', '.join(map(str, self.delays))}",
            f"  grid: {g.height} x {g.width} px, {crs}, pixel {g.res[0]:.6g} x {g.res[1]:.6g}",
            f"  size on disk: {self.size_bytes / 2**20:.1f} MiB",
            "  annotated pixels: " + ("none (no annotations)" if self.annotated_pixels is None
                                      else f"{self.annotated_pixels:,}"),
        ]
        if self.skipped:
            lines.append(f"  skipped files: {len(self.skipped)}")
            lines += [f"    - {p}: {why}" for p, why in self.skipped[:20]]
        return "\n".join(lines)


def build_cube(
    source: Any,
    store: str | Path,
    *,
    annotations: str | Path | Sequence[str | Path] | None = None,
    chunks: int | dict[str, int] | None = None,
    client: Any = None,
    overwrite: bool = False,
    align: bool = False,
    all_touched: bool = False,
    progress: bool = False,
) -> BuildSummary:
    """Build (or resume) the Zarr v3 cube of every interferogram of ``source``.

    Parameters
    ----------
    source
        A raw folder (the layout of :func:`isslide_cube.synthetic.generate`,
        or any folder :func:`isslide_cube.io.discover` understands), a list of
        files, or a manifest (``.csv``/``.json``). Only read, never written.
        ``layover.tif`` and ``zones.gpkg`` in a raw folder become ``layover``
        and ``zone``.
    store
        The Zarr store (a local folder) to write.
    annotations
        A folder (or file, or list of files) of annotation polygons, any OGR
        format and CRS; default: ``SOURCE/annotations`` when it exists. Without
        any, the cube has no ``mask``/``move_id``.
    chunks
        Spatial chunk side in pixels (default 500; keep it a multiple of the
        patch size), or ``{"y": C, "x": C}``.
    client
        A ``distributed.Client`` or a scheduler address to compute on; None
        uses Dask's default scheduler. Never creates a cluster.
    overwrite
        Replace whatever is at ``store`` (otherwise a store built from the same
        inputs is resumed, or returned as is when complete, and any other
        content is refused).
    align
        Reproject files on another grid onto the first interferogram's grid.
    all_touched
        Rasterize every pixel a polygon touches (default: pixel centres).
    progress
        Show a tqdm bar (interferograms written / total).

    Returns
    -------
    BuildSummary
        Interferograms, dates, delays, grid, size on disk, annotated pixels.

    Raises
    ------
    RawDataError, RawFileNotFoundError
        Bad input (no store is left: values are checked while the tasks read
        them, and a store started by this call is removed).
    CubeError
        ``store`` holds something else than a build of these inputs, and
        ``overwrite`` is False (it is left intact).

    Examples
    --------
    >>> from isslide_cube.cluster import local_client
    >>> with local_client(n_workers=2) as client:  # doctest: +SKIP
    ...     print(build_cube("raw", "cube.zarr", client=client, progress=True))
    """
    started = time.perf_counter()
    store = Path(store)
    plan = _plan(source, store, annotations, chunks, align, all_touched)
    state = _store_state(store, plan.fingerprint, overwrite)
    resumed = state == "resume"
    if state == "complete":
        log.info("%s is already complete for these inputs; nothing to do", store)
        return _summary(plan, 0, False, started)
    if state == "fresh":
        if store.exists():
            shutil.rmtree(store) if store.is_dir() else store.unlink()
        _write_template(plan)
    todo = _todo(plan.store, plan.index) if resumed else list(range(len(plan.items)))
    log.info("building %s: %d of %d interferogram(s) to write", store, len(todo),
             len(plan.items))
    try:
        _run(plan, todo, client, progress)
    except RawDataError:
        # A file's values are wrong (coherence outside [0, 1], a corrupt block): fixing
        # it changes the inputs' fingerprint, so a store started here could never be
        # resumed. Leave none behind; a resumed store is left as it was.
        if not resumed:
            shutil.rmtree(store, ignore_errors=True)
        raise
    _finish(plan)
    return _summary(plan, len(todo), resumed, started)


def _run(plan: _Plan, todo: list[int], client: Any, progress: bool) -> None:
    """One task per interferogram, computed on ``client`` or the default scheduler."""
    import dask

    from isslide_cube.cluster import as_client

    shapes = _shapes_by_pair(plan)
    write = dask.delayed(_write_interferogram, pure=False)
    tasks = []
    for k in todo:
        item, (i, j) = plan.items[k], plan.index[k]
        pair_shapes = None if plan.table is None else shapes.get(item.pair, [])
        job = _Job(str(plan.store), item, i, j, plan.grid, pair_shapes, plan.chunk, plan.align,
                   plan.all_touched)
        # the store is in the key: two builds on one cluster never share a task
        token = dask.base.tokenize(str(plan.store.resolve()), plan.fingerprint, item.name)
        tasks.append(write(job, dask_key_name=f"write-interferogram-{item.name}-{token}"))
    if not tasks:
        return
    bar = _bar(len(tasks), progress)
    owned = isinstance(client, str)  # a client we open from an address, we close
    client = as_client(client)
    try:
        if client is not None:
            from distributed import as_completed

            futures = client.compute(tasks)
            for n, future in enumerate(as_completed(futures), start=1):
                future.result()  # re-raises a task's error here
                bar.update(1)
                _maybe_crash(n)
        else:
            from dask.callbacks import Callback

            keys = {t.key for t in tasks}
            counter = [0]

            def _posttask(key, result, dsk, state, worker_id):
                if key in keys:
                    counter[0] += 1
                    bar.update(1)
                    _maybe_crash(counter[0])

            with Callback(posttask=_posttask):
                dask.compute(*tasks, scheduler=_default_scheduler())
    finally:
        bar.close()
        if owned:
            client.close()


def _default_scheduler() -> Any:
    """Dask's default scheduler for ``dask.compute``, without importing ``distributed``.

    Dask's own lookup imports ``distributed`` (~0.5 s) only to ask for a default
    ``Client``; none can exist before ``distributed`` is imported, and then (or
    with a configured ``scheduler``) Dask's lookup is used as is.
    """
    import sys

    import dask

    if "distributed" in sys.modules or dask.config.get("scheduler", None) is not None:
        return None
    import dask.threaded

    return dask.threaded.get  # the default for delayed tasks


def _bar(total: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="interferograms", unit="ifg", disable=not progress)


def _maybe_crash(n_written: int) -> None:
    after = os.environ.get(CRASH_ENV)
    if not after or n_written < int(after):
        return
    log.error("%s=%s: killing this build on purpose (testing)", CRASH_ENV, after)
    if os.getpgrp() == os.getpid():  # we lead our group (a CLI run in its own session)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _finish(plan: _Plan) -> None:
    import zarr

    done = zarr.open_array(plan.store / DONE, mode="r", zarr_format=3)[...]
    missing = [plan.items[k].name for k, (i, j) in enumerate(plan.index) if done[i, j] != 1]
    if missing:  # a task returned without its marker: never expected, never hidden
        raise CubeError(f"{plan.store}: interferograms {missing[:10]} were not written; rerun "
                        f"`isslide-cube build {plan.source} {plan.store}` to finish")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(plan.store, zarr_format=3)
    _set_attrs(plan.store, {schema.ATTR_COMPLETE: 1})  # last


def _summary(plan: _Plan, written: int, resumed: bool, started: float) -> BuildSummary:
    import zarr

    annotated = None
    if plan.table is not None:
        annotated = int(zarr.open_array(plan.store / ANNOTATED, mode="r", zarr_format=3)[...]
                        .sum())
    dates = {it.first for it in plan.items} | {it.second for it in plan.items}
    return BuildSummary(
        store=plan.store, interferograms=len(plan.items), dates=len(dates),
        start_dates=len(plan.start_dates), delays=tuple(int(d) for d in plan.delays),
        grid=plan.grid, size_bytes=_du(plan.store), annotated_pixels=annotated,
        written=written, resumed=resumed, seconds=time.perf_counter() - started,
        skipped=plan.skipped)

