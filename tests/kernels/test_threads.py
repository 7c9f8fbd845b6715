"""Thread rules: explicit counts, NUMBA_NUM_THREADS, one thread in worker threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numba
import pytest

from isslide_cube.kernels.threads import in_dask_worker, resolve_threads, use_threads


def test_main_thread_uses_numba_threads():
    assert resolve_threads() == numba.get_num_threads()
    assert resolve_threads(1) == 1
    assert resolve_threads(10_000) == numba.config.NUMBA_NUM_THREADS
    with pytest.raises(ValueError, match="n_threads"):
        resolve_threads(0)


def test_other_threads_get_one():
    seen = []
    t = threading.Thread(target=lambda: seen.append(resolve_threads()))
    t.start()
    t.join()
    assert seen == [1]
    assert not in_dask_worker()


def test_use_threads_restores():
    before = numba.get_num_threads()
    with use_threads(1):
        assert numba.get_num_threads() == before
    if numba.config.NUMBA_NUM_THREADS > 1:
        numba.set_num_threads(1)
        try:
            with use_threads(2):
                assert numba.get_num_threads() == 2
            assert numba.get_num_threads() == 1
        finally:
            numba.set_num_threads(before)


def test_numba_num_threads_env_is_respected():
    code = ("from isslide_cube.kernels.threads import resolve_threads; "
            "print(resolve_threads(), resolve_threads(8))")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["1", "1"]


def test_distributed_worker_gets_one_thread():
    distributed = pytest.importorskip("distributed")

    def probe():
        return in_dask_worker(), resolve_threads()

    with distributed.Client(n_workers=1, threads_per_worker=2, processes=False,
                            dashboard_address=":0") as client:
        assert client.submit(probe, pure=False).result() == (True, 1)
