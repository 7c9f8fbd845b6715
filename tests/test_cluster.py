"""The explicit Dask client helper."""

import dask.array as da
import pytest

from isslide_cube.cluster import as_client, local_client


def test_as_client_keeps_none():
    assert as_client(None) is None


@pytest.mark.slow
def test_local_client_runs_and_closes():
    with local_client(n_workers=2, threads_per_worker=1) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        total = da.ones((100, 100), chunks=10).sum().compute()
        assert total == 10_000
        env = client.run(lambda: __import__("os").environ.get("NUMBA_NUM_THREADS"))
        assert set(env.values()) == {"1"}
    assert client.status == "closed"


def test_local_client_with_threads_only():
    with local_client(n_workers=1, threads_per_worker=2, processes=False) as client:
        assert da.arange(10, chunks=5).sum().compute() == 45
        assert client.scheduler_info()["workers"]
