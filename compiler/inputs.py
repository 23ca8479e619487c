"""`run --input`: read and check the user's input arrays before anything is compiled or built.

Accepted files: `.npy` (one array) or `.npz` (arrays named after the model's inputs). An array
holds N inputs, `(N, *shape)`, or one input, `shape`, where `shape` is the input in

- `layout="model"` (default): the model file's own layout (NCHW for an ONNX image model, NHWC
  for TFLite), transposed to the IR's NHWC here; or
- `layout="ir"`: the IR's layout (NHWC), taken as is.

A shape that fits only the other layout is refused with a message naming both shapes (no
guessing). dtype rules:

- float32 / float64: finite; quantized with the input's scale and zero point
  (`q = clamp(round(x / s) + zp, -128, 127)`, round half to even as numpy does);
- integer (int8, or any other integer dtype whose values all lie in [-128, 127]): already
  quantized int8 values, taken as is;
- anything else (bool, float16, complex, strings, objects), NaN/inf, integers out of range,
  empty arrays: `InputError` (one line, exit 2).

Returns `(N, *IR input shape)` int8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.errors import MicrotileError
from compiler.ir import Graph


class InputError(MicrotileError):
    """An --input file that cannot be used as the model's input."""


def read_input_file(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a .npy (key "") or .npz file (its names), without pickles. InputError."""
    path = Path(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise InputError(f"{path}: --input must be a .npy or .npz file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return {"": loaded}
            arrays = {k: loaded[k] for k in loaded.files}
    except InputError:
        raise
    except Exception as e:  # numpy raises ValueError, OSError, EOFError, zipfile errors, ...
        raise InputError(f"{path}: cannot read it as a numpy array ({type(e).__name__}: {e})") from None
    if not arrays:
        raise InputError(f"{path}: the .npz file holds no arrays")
    return arrays


def _input_layouts(graph: Graph) -> tuple[tuple[int, ...], tuple[int, ...], list[int], list[str]]:
    """(model-layout shape, IR shape, perm model->IR, accepted .npz names) of the graph's input."""
    name = graph.inputs[0]
    ir_shape = tuple(graph.t(name).shape)
    perms = graph.meta.get("input_perms", {})
    shapes = graph.meta.get("onnx_input_shapes", {})
    key = name if name in perms else (next(iter(perms)) if len(perms) == 1 else None)
    if key is None:
        return ir_shape, ir_shape, list(range(len(ir_shape))), [name]
    return tuple(shapes[key]), ir_shape, list(perms[key]), sorted({name, key})


def _fmt(shape: tuple[int, ...]) -> str:
    return "(N, " + ", ".join(str(d) for d in shape[1:]) + ")"



def check_input(graph: Graph, arrays: dict[str, np.ndarray], source: str, layout: str = "model") -> np.ndarray:
    """The checked inputs as (N, *IR shape) int8 (module docstring for the rules). InputError."""
    if layout not in ("model", "ir"):
        raise InputError(f"--input-layout {layout!r}: expected 'model' or 'ir'")
    if len(graph.inputs) != 1:
        raise InputError(f"{source}: --input supports single-input models (this one has {len(graph.inputs)})")
    model_shape, ir_shape, perm, names = _input_layouts(graph)
    if "" in arrays:
        x = arrays[""]
    else:
        unknown = sorted(set(arrays) - set(names))
        hits = [k for k in arrays if k in names]
        if unknown or len(hits) != 1:
            raise InputError(
                f"{source}: .npz arrays {sorted(arrays)} do not name the model's input: expected one array named "
                + " or ".join(repr(n) for n in names)
            )
        x = arrays[hits[0]]
    if x.dtype.kind not in "iuf" or x.dtype == np.float16:
        raise InputError(
            f"{source}: dtype {x.dtype} is not an input type: use float32/float64 (quantized here) or int8 values"
        )
    if x.size == 0:
        raise InputError(f"{source}: empty array of shape {x.shape}")
    want = tuple(model_shape if layout == "model" else ir_shape)
    other = tuple(ir_shape if layout == "model" else model_shape)
    x0, x = x, _batched(x, want)
    if x is None:
        hint = ""
        if other != want and _batched(x0, other) is not None:
            flag = "ir" if layout == "model" else "model"
            hint = f"; that is the {flag} layout {_fmt(other)}: pass --input-layout {flag} if you mean it"
        where = "the model's own layout" if layout == "model" else "the IR's NHWC layout"
        raise InputError(
            f"{source}: array of shape {x0.shape} is not {_fmt(want)} (N inputs of {want}) in {where}{hint}"
        )
    if layout == "model":
        x = np.transpose(x, perm)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise InputError(f"{source}: {int(np.size(x) - np.isfinite(x).sum())} value(s) are NaN or infinite")
        q = graph.t(graph.inputs[0]).quant
        if q is None:
            raise InputError(f"{source}: the model input has no quantization parameters to quantize float data")
        x = np.clip(np.round(x.astype(np.float64) / q.s) + q.zp, -128, 127)
    else:
        lo, hi = int(x.min()), int(x.max())
        if lo < -128 or hi > 127:
            raise InputError(
                f"{source}: integer values in [{lo}, {hi}] outside int8 [-128, 127]; integer arrays are taken as "
                "quantized int8 values (pass float32 to have them quantized)"
            )
    return np.ascontiguousarray(x.astype(np.int8)).reshape((-1, *ir_shape))


def _batched(x: np.ndarray, want: tuple[int, ...]) -> np.ndarray | None:
    """x as (N, *want[1:]) when its shape is `want`, `want[1:]`, (N, *want) or (N, *want[1:]) (batch 1
    models: an input is the whole tensor), else None."""
    one = want[0] == 1
    if x.shape == want or x.shape == want[1:]:
        return x.reshape((1, *want[1:])) if one or x.shape == want[1:] else x
    if one and x.shape[1:] == want:
        return x.reshape((x.shape[0], *want[1:]))
    if x.ndim == len(want) and x.shape[1:] == want[1:]:
        return x
    return None
