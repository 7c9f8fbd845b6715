"""The explicit way to a Dask client: a LocalCluster, or a scheduler address.

Library functions take an optional ``client`` (a ``distributed.Client`` or an
address string) and never start one on their own; only the CLI and the demo
call :func:`get_client`.

Examples
--------
>>> from isslide_cube.cluster import get_client
>>> client = get_client(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
>>> client = get_client("tcp://scheduler:8786")              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

ClientLike = Any  # distributed.Client | str | None


def get_client(
    address: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | None = "auto",
    **kwargs: Any,
):
    """Connect to ``address``, or start a :class:`distributed.LocalCluster`.

    Parameters
    ----------
    address
        A scheduler address (``tcp://host:8786``). ``None`` starts a local cluster.
    n_workers
        Workers of the local cluster; default: the number of CPUs.
    threads_per_worker
        Threads per local worker. One thread per worker keeps numba kernels
        from oversubscribing the CPUs (each worker sets its numba threads to this).
    processes
        Worker processes (True) or threads in this process (False).

    Returns
    -------
    distributed.Client
        Close it (``client.close(); client.cluster.close()``) or use
        :func:`local_client` as a context manager.
    """
    from distributed import Client, LocalCluster

    if address:
        log.info("connecting to Dask scheduler %s", address)
        return Client(address)
    n_workers = n_workers or os.cpu_count() or 1
    if processes:  # worker processes: no more numba/OpenMP threads than worker threads
        kwargs.setdefault("env", {"NUMBA_NUM_THREADS": str(threads_per_worker),
                                  "OMP_NUM_THREADS": "1"})
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=processes,
        memory_limit=memory_limit,
        dashboard_address=kwargs.pop("dashboard_address", ":0"),
        **kwargs,
    )
    log.info("started a LocalCluster: %d workers x %d threads (%s)", n_workers,
             threads_per_worker, cluster.dashboard_link)
    return Client(cluster)


@contextlib.contextmanager
def local_client(address: str | None = None, **kwargs: Any) -> Iterator[Any]:
    """:func:`get_client` as a context manager that closes what it started."""
    client = get_client(address, **kwargs)
    try:
        yield client
    finally:
        cluster = None if address else client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def as_client(client: ClientLike):
    """Return a ``distributed.Client`` for ``client`` (object, address, or None).

    ``None`` stays ``None``: the caller then computes with the default Dask
    scheduler (a client registered as default by the user is picked up by Dask
    itself).
    """
    if client is None or not isinstance(client, str):
        return client
    from distributed import Client

    return Client(client)
