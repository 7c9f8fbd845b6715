"""Suite-wide settings: headless plots, modest thread counts on the 2-core CI machine."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NUMBA_NUM_THREADS", "2")
