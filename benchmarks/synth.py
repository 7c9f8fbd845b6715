"""Benchmark of the synthetic generator: wall time and peak memory per preset.

Each preset runs in its own child process (so its peak RSS is its own), and a
micro-benchmark compares the Wishart (Bartlett) noise sampler with the reference that
draws the 16 looks explicitly, on the same pixels, in the same run.

    .venv/bin/python -m benchmarks.synth            # small and paper (paper: ~15 min)
    .venv/bin/python -m benchmarks.synth --quick    # small only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, resource, sys, time
from isslide_cube.synthetic import generate
t = time.perf_counter()
generate(sys.argv[1], preset=sys.argv[2], seed=0, progress=sys.argv[3] == '1')
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({'wall_s': wall, 'maxrss_mib': rss / 1024}))
"""


def run_preset(preset: str, progress: bool, keep: str | None = None) -> dict:
    """Generate ``preset`` in a child process; return its wall time, CPU time, peak RSS.

    The output goes to a temporary folder, or to ``keep/<preset>`` (kept) when given.
    """
    if keep:
        os.makedirs(keep, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"synth_{preset}_", dir=keep) as tmp:
        if keep:
            tmp = os.path.join(keep, preset)
            if os.path.exists(tmp):
                raise SystemExit(f"{tmp} exists; remove it or choose another --keep folder")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, os.path.join(tmp, "raw"), preset,
                               "1" if progress else "0"], check=True, stdout=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(preset=preset, process_wall_s=wall,
                  cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                  children_maxrss_mib=after.ru_maxrss / 1024, output_mib=size / 2**20)
    return result


def noise_peer(n: int = 1_000_000, looks: int = 16) -> dict:
    """Wishart sampler vs explicit looks on ``n`` pixels at coherence 0.6."""
    import numpy as np

    from isslide_cube.synthetic.noise import sample_multilook, simulate_looks

    rng = np.random.default_rng(0)
    gamma = np.full(n, 0.6, dtype="float32")
    t = time.perf_counter()
    sample_multilook(gamma, np.zeros_like(gamma), looks, rng)
    wishart = time.perf_counter() - t
    t = time.perf_counter()
    simulate_looks(0.6, 0.0, looks, n, rng)
    explicit = time.perf_counter() - t
    return {"pixels": n, "wishart_s": wishart, "explicit_looks_s": explicit,
            "speed-up": explicit / wishart}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small preset only")
    parser.add_argument("--presets", nargs="*", default=None, help="presets to run")
    parser.add_argument("--progress", action="store_true", help="tqdm bar in the child")
    parser.add_argument("--keep", default=None, help="keep the outputs in KEEP/<preset>")
    args = parser.parse_args(argv)
    presets = args.presets or (["small"] if args.quick else ["small", "paper"])
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for preset in presets:
        r = run_preset(preset, args.progress, args.keep)
        print(f"synth --preset {preset}: wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s, "
              f"peak RSS {r['maxrss_mib']:.0f} MiB, output {r['output_mib']:.0f} MiB")
    # after the presets: Linux carries a parent's RSS high-water mark into its children
    peer = noise_peer()
    print(f"noise sampler, {peer['pixels']} px, L=16: Wishart {peer['wishart_s']:.3f} s, "
          f"explicit looks {peer['explicit_looks_s']:.3f} s, ratio {peer['speed-up']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
