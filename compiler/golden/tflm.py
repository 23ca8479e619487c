"""Run a .tflite model in TFLite-Micro's reference kernels (the `tflite-micro` package)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tflm_available() -> bool:
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except Exception:
        return False
    return True


class TflmModel:
    """One TFLM interpreter for a model file; `invoke(x)` returns the outputs."""

    def __init__(self, path: str | Path | bytes, arena_size: int = 4 << 20) -> None:
        from tflite_micro.python.tflite_micro import runtime

        data = path if isinstance(path, bytes) else Path(path).read_bytes()
        self.interp = runtime.Interpreter.from_bytes(data, arena_size=arena_size)

    def invoke(self, *inputs: np.ndarray, n_outputs: int = 1) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            self.interp.set_input(x, i)
        self.interp.invoke()
        return [self.interp.get_output(i) for i in range(n_outputs)]
