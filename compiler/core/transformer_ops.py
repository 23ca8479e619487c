"""Float semantics of the transformer op kinds (what their int8 versions approximate).

These are the definitions a float executor (`compiler/golden/float_ref.py`) and the ViT builder's
calibration use; `compiler/core/lower.py` + `compiler/golden/reference.py` hold the int8 arithmetic.

- ``layer_norm(x, gamma, beta){axis=-1, epsilon}``: over the last axis,
  ``y = (x - mean(x)) / sqrt(var(x) + epsilon) * gamma + beta`` with the biased variance
  (``mean((x - mean)^2)``, as torch.nn.LayerNorm). gamma, beta: float32 [D] constants.
- ``gelu(x){approximate}``: ``"none"``: ``0.5 x (1 + erf(x / sqrt 2))`` (torch's default);
  ``"tanh"``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
- ``batch_matmul(a, b){transpose_b}``: ``a [B.., M, K] @ b [B.., K, N]`` -> ``[B.., M, N]``; with
  ``transpose_b`` b is ``[B.., N, K]`` and the product is ``a @ swapaxes(b, -1, -2)``. The batch
  dimensions of a and b must be equal (no broadcasting). No scale factor: attention's
  1/sqrt(d_head) is softmax's ``beta`` (or folded into the query weights).
- ``transpose(x){perm}``: ``np.transpose(x, perm)``.
- ``slice(x){begin, size}``: ``x[b0:b0+s0, b1:b1+s1, ...]`` (a size of -1 means "to the end").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float = 1e-5) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + epsilon) * np.asarray(gamma, np.float64) + np.asarray(beta, np.float64)


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if approximate != "none":
        raise ValueError(f"gelu: unknown approximation {approximate!r}")
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def batch_matmul(a: np.ndarray, b: np.ndarray, transpose_b: bool = False) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return a @ b


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    return np.transpose(x, tuple(perm))


def slice_(x: np.ndarray, begin: Sequence[int], size: Sequence[int]) -> np.ndarray:
    return x[slice_index(x.shape, begin, size)]


def slice_index(shape: Sequence[int], begin: Sequence[int], size: Sequence[int]) -> tuple[slice, ...]:
    idx = []
    for d, b, s in zip(shape, begin, size, strict=True):
        idx.append(slice(b, d if s < 0 else b + s))
    return tuple(idx)
