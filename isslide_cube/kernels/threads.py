"""How many numba threads a kernel call may use, and serial versus parallel dispatch.

Rules (in this order):

1. An explicit ``n_threads`` argument wins (capped at ``NUMBA_NUM_THREADS``).
2. Called from the main thread: ``numba.get_num_threads()``, which is
   ``NUMBA_NUM_THREADS`` (default: the number of CPUs) unless the caller
   lowered it with :func:`numba.set_num_threads`.
3. Called from any other thread, i.e. a Dask worker thread (``distributed``
   worker, detected with :func:`distributed.get_worker`) or a thread of Dask's
   local threaded scheduler: **one** thread. Dask already runs one task per
   core; a numba pool per task would oversubscribe the CPUs (n tasks x n
   threads). One numba thread per worker thread is exactly the advice of
   :func:`isslide_cube.cluster.get_client`, which also exports
   ``NUMBA_NUM_THREADS=threads_per_worker`` to worker processes.

A call that ends with one thread runs the *serial* compilation of the kernel,
so it never touches numba's threading layer (no pool start-up, no nested
parallelism questions).

Examples
--------
>>> from isslide_cube.kernels.threads import resolve_threads
>>> resolve_threads(1)
1
"""

from __future__ import annotations

import sys
import threading

import numba


def in_dask_worker() -> bool:
    """True when running inside a ``distributed`` worker (any of its threads)."""
    dist = sys.modules.get("distributed")  # never import distributed just to ask
    if dist is None:
        return False
    try:
        dist.get_worker()
    except ValueError:
        return False
    return True


def resolve_threads(n_threads: int | None = None) -> int:
    """Number of numba threads a kernel call should use (see the module rules).

    Parameters
    ----------
    n_threads
        Explicit request; ``None`` applies the automatic rules.

    Returns
    -------
    int
        At least 1, at most ``numba.config.NUMBA_NUM_THREADS``.
    """
    max_threads = int(numba.config.NUMBA_NUM_THREADS)
    if n_threads is not None:
        n = int(n_threads)
        if n < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
        return min(n, max_threads)
    if threading.current_thread() is not threading.main_thread() or in_dask_worker():
        return 1
    return max(1, min(numba.get_num_threads(), max_threads))


class use_threads:
    """Context manager: numba's thread count for this thread set to ``n`` (restored on exit).

    ``numba.set_num_threads`` is thread-local, so this does not affect other
    threads. With ``n == 1`` nothing is changed (serial kernels are used).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._old: int | None = None

    def __enter__(self) -> int:
        if self.n > 1:
            self._old = numba.get_num_threads()
            numba.set_num_threads(self.n)
        return self.n

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            numba.set_num_threads(self._old)
