"""Exact comparison of checkpoint states, shared by the training tests of tests/ml."""

from __future__ import annotations

import numpy as np
import torch


def same_state(a, b) -> bool:
    """Exact equality of nested checkpoint states (tensors and arrays bit for bit)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b, strict=True))
    if torch.is_tensor(a):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b
