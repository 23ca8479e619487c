"""`run --input`: read and check the user's input arrays before anything is compiled or built.

Accepted files: `.npy` (one array, single-input models) or `.npz` (one array per model input,
named after the input, or `input<k>`, or numpy's `arr_<k>` by position). An array holds N inputs,
`(N, *shape)`, or one input, `shape`, where `shape` is the input in

- `layout="model"` (default): the model file's own layout (NCHW for an ONNX image model, NHWC
  for TFLite), transposed to the IR's NHWC here; or
- `layout="ir"`: the IR's layout (NHWC), taken as is.

A shape that fits only the other layout is refused with a message naming both shapes (no
guessing). dtype rules:

- float32 / float64: finite; quantized with the input's scale and zero point
  (`q = clamp(round(x / s) + zp, lo, hi)` over the input's dtype, as TFLite-Micro's QUANTIZE does
  it: float32 division, rounding half away from zero);
- integer (any integer dtype whose values all lie in the input dtype's range: int8 [-128, 127],
  uint8 [0, 255], int16 [-32768, 32767]): already quantized values, taken as is;
- anything else (bool, float16, complex, strings, objects), NaN/inf, integers out of range,
  empty arrays, inputs with different sample counts: `InputError` (one line, exit 2).

`check_inputs` returns one `(N, *IR shape)` array per model input, of that input's dtype.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.core.ir import Graph
from compiler.errors import MicrotileError


class InputError(MicrotileError):
    """An --input file that cannot be used as the model's input."""


def read_input_file(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a .npy (key "") or .npz file (its names), without pickles. InputError."""
    path = Path(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise InputError(f"{path}: --input must be a .npy or .npz file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:6] != b"\x93NUMPY" and magic[:2] != b"PK":  # np.save's header / np.savez's zip
        raise InputError(f"{path}: not a .npy or .npz file (no NumPy header); write it with np.save or np.savez")
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return {"": loaded}
            arrays = {k: loaded[k] for k in loaded.files}
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e):  # never unpickled: an object array is not an input
            raise InputError(f"{path}: holds Python objects (an object array), not numbers; save a numeric "
                             "array, e.g. np.save(path, x.astype(np.float32))") from None  # fmt: skip
        raise InputError(f"{path}: cannot read it as a numpy array ({e})") from None
    except Exception as e:  # numpy raises OSError, EOFError, zipfile errors, ...
        raise InputError(f"{path}: cannot read it as a numpy array ({type(e).__name__}: {e})") from None
    if not arrays:
        raise InputError(f"{path}: the .npz file holds no arrays")
    return arrays


def _input_layouts(graph: Graph, name: str) -> tuple[tuple[int, ...], tuple[int, ...], list[int], list[str]]:
    """(model-layout shape, IR shape, perm model->IR, accepted .npz names) of graph input `name`."""
    ir_shape = tuple(graph.t(name).shape)
    perms = graph.meta.get("input_perms", {})
    shapes = graph.meta.get("onnx_input_shapes", {})
    key = name if name in perms else (next(iter(perms)) if len(perms) == 1 and len(graph.inputs) == 1 else None)
    if key is None:
        return ir_shape, ir_shape, list(range(len(ir_shape))), [name]
    return tuple(shapes[key]), ir_shape, list(perms[key]), sorted({name, key})


def _fmt(shape: tuple[int, ...]) -> str:
    return "(N, " + ", ".join(str(d) for d in shape[1:]) + ")"


def _pick(graph: Graph, arrays: dict[str, np.ndarray], source: str) -> list[tuple[str, np.ndarray, str]]:
    """(input name, array, where it came from) per model input."""
    if len(graph.inputs) == 1:
        names = _input_layouts(graph, graph.inputs[0])[3]
        if "" in arrays:
            return [(graph.inputs[0], arrays[""], source)]
        hits = [k for k in arrays if k in names or k in ("input0", "arr_0")]
        if sorted(set(arrays) - set(hits)) or len(hits) != 1:
            raise InputError(
                f"{source}: .npz arrays {sorted(arrays)} do not name the model's input: expected one array named "
                + " or ".join(repr(n) for n in names)
            )
        return [(graph.inputs[0], arrays[hits[0]], f"{source}[{hits[0]}]")]
    if "" in arrays:
        raise InputError(
            f"{source}: the model has {len(graph.inputs)} inputs: pass a .npz with one array per input "
            f"(named {', '.join(repr(n) for n in graph.inputs)}, or input0.., or by position)"
        )
    out = []
    for k, name in enumerate(graph.inputs):
        names = _input_layouts(graph, name)[3]
        key = next((c for c in (*names, f"input{k}", f"arr_{k}") if c in arrays), None)
        if key is None:
            raise InputError(f"{source}: no array for model input {k} ({name!r}; keys {sorted(arrays)})")
        out.append((name, arrays[key], f"{source}[{key}]"))
    return out


def _check_one(graph: Graph, name: str, x: np.ndarray, source: str, layout: str) -> np.ndarray:
    t = graph.t(name)
    info = np.iinfo(t.dtype)
    if x.dtype.kind not in "iuf" or x.dtype == np.float16:
        raise InputError(
            f"{source}: dtype {x.dtype} is not an input type: use float32/float64 (quantized here) or "
            f"{t.dtype} values"
        )
    if x.size == 0:
        raise InputError(f"{source}: empty array of shape {x.shape}")
    model_shape, ir_shape, perm, _ = _input_layouts(graph, name)
    want = tuple(model_shape if layout == "model" else ir_shape)
    other = tuple(ir_shape if layout == "model" else model_shape)
    x0, xb = x, _batched(x, want)
    if xb is None:
        hint = ""
        if other != want and _batched(x0, other) is not None:
            flag = "ir" if layout == "model" else "model"
            hint = f"; that is the {flag} layout {_fmt(other)}: pass --input-layout {flag} if you mean it"
        where = "the model's own layout" if layout == "model" else "the IR's NHWC layout"
        raise InputError(
            f"{source}: array of shape {x0.shape} is not {_fmt(want)} (N inputs of {want}) in {where}{hint}"
        )
    x = xb
    if layout == "model":
        x = np.transpose(x, perm)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise InputError(f"{source}: {int(np.size(x) - np.isfinite(x).sum())} value(s) are NaN or infinite")
        q = t.quant
        if q is None:
            raise InputError(f"{source}: the model input has no quantization parameters to quantize float data")
        # TFLite-Micro's AffineQuantize: float32 x / scale, std::round (half away from zero), + zp
        v = (x.astype(np.float32) / np.float32(q.s)).astype(np.float64)
        x = np.clip(np.trunc(v + np.copysign(0.5, v)) + q.zp, info.min, info.max)
    else:
        lo, hi = int(x.min()), int(x.max())
        if lo < info.min or hi > info.max:
            raise InputError(
                f"{source}: integer values in [{lo}, {hi}] outside {t.dtype} [{info.min}, {info.max}]; integer "
                f"arrays are taken as quantized {t.dtype} values (pass float32 to have them quantized)"
            )
    return np.ascontiguousarray(x.astype(t.dtype)).reshape((-1, *ir_shape))


def check_inputs(
    graph: Graph, arrays: dict[str, np.ndarray], source: str, layout: str = "model"
) -> list[np.ndarray]:
    """One checked `(N, *IR shape)` array per model input, in graph.inputs order, of that input's
    dtype (module docstring for the rules). Raises InputError."""
    if layout not in ("model", "ir"):
        raise InputError(f"--input-layout {layout!r}: expected 'model' or 'ir'")
    per = [_check_one(graph, name, x, where, layout) for name, x, where in _pick(graph, arrays, source)]
    if len({len(a) for a in per}) != 1:
        raise InputError(f"{source}: the inputs hold different numbers of samples {[len(a) for a in per]}")
    return per


def check_input(graph: Graph, arrays: dict[str, np.ndarray], source: str, layout: str = "model") -> np.ndarray:
    """The checked inputs of a single-input model as (N, *IR shape) of its dtype. Raises InputError."""
    if len(graph.inputs) != 1:
        raise InputError(
            f"{source}: this model has {len(graph.inputs)} inputs: pass a .npz with one array per input"
        )
    return check_inputs(graph, arrays, source, layout)[0]


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
