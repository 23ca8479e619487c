"""PyTorch models into microtile: `torch.onnx.export` (TorchScript exporter, opset 17) -> the ONNX path.

    graph = from_torch(model, example_input)                     # float32 IR graph
    int8 = quantize_torch(model, example_input, calib)           # PTQ on calibration inputs
    report = run_torch(model, example_input, calib, board="stm32f405", out="build/m")

`example_input` and `calib` are in the module's own layout (NCHW for images), as torch tensors or
numpy arrays; `calib` is a batch [N, ...]. Needs the `torch` extra (pip install 'microtile[torch]');
nothing else in microtile imports torch.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from compiler.core.ir import Graph
from compiler.errors import ModelError

OPSET = 17


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelError("PyTorch import needs torch (pip install 'microtile[torch]')") from None
    return torch


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, np.float32)


def _one_input(module: Any) -> Any:
    """`module`, or a wrapper whose forward takes only the input when the module's forward has more
    parameters: the TorchScript exporter traces their defaults as tensors, and e.g.
    `nn.TransformerEncoderLayer(..., is_causal=False)` then fails inside scaled_dot_product_attention."""
    import inspect

    torch = _torch()
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return module
    if len(params) <= 1:
        return module

    class OneInput(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return self.inner(x)

    return OneInput(module)


def export_onnx(module: Any, example_input: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Export `module` (eval mode, fixed shapes, batch 1) to an ONNX file."""
    torch = _torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = example_input if hasattr(example_input, "detach") else torch.from_numpy(_np(example_input))
    if x.shape[0] != 1 and not (x.ndim == 3 and x.shape[1] == 1):  # [T, 1, D]: sequence-first, batch 1
        x = x[:1]
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _one_input(module),
                (x,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=["output"],
                do_constant_folding=True,
            )
    except Exception as e:
        raise ModelError(f"torch.onnx.export failed for {type(module).__name__}: {type(e).__name__}: {e}") from None
    finally:
        module.train(was_training)
    return path


def from_torch(module: Any, example_input: Any, onnx_path: str | Path | None = None) -> Graph:
    """The float32 IR graph of `module` (exported to `onnx_path`, or a kept temporary file)."""
    from compiler.frontend.onnx import load_onnx

    if onnx_path is None:
        onnx_path = Path(tempfile.mkdtemp(prefix="microtile_torch_")) / f"{type(module).__name__.lower()}.onnx"
    graph = load_onnx(export_onnx(module, example_input, onnx_path))
    graph.name = type(module).__name__.lower()
    return graph


def quantize_torch(
    module: Any,
    example_input: Any,
    calib: Any,
    onnx_path: str | Path | None = None,
    log: Any = None,
    board: str | None = None,
    eval_inputs: Any = None,
) -> Graph:
    """int8 IR graph: export, import, PTQ on `calib` ([N, ...] in the module's layout; sequence-first
    modules [T, N, D]); SQNR and top-1 agreement with float in meta['quantization'], measured on
    `eval_inputs` when given. With `board`, BoardFitError before the calibration when the int8 weights
    cannot fit its flash."""
    from compiler.pipeline import load_model

    g = from_torch(module, example_input, onnx_path)
    path = g.meta["onnx_path"]
    ev = None if eval_inputs is None else _np(eval_inputs)
    q = load_model(path, _np(calib), log or (lambda _m: None), board=board, eval_data=ev)
    q.name = g.name
    return q


def compile_torch(
    module: Any,
    example_input: Any,
    calib: Any,
    board: str = "stm32f405",
    out: str | Path = "build/torch_model",
    log: Any = None,
    **options: Any,
):
    """PyTorch module -> C project in `out` (and an ELF when arm-none-eabi-gcc is there)."""
    from compiler.pipeline import CompileOptions, _quiet, compile_graph

    out = Path(out)
    g = quantize_torch(module, example_input, calib, out.parent / f"{out.name}.onnx", log, board)
    return compile_graph(g, out, CompileOptions(board=board, **options), log or _quiet)


def run_torch(
    module: Any,
    example_input: Any,
    calib: Any,
    board: str = "stm32f405",
    out: str | Path = "build/torch_model",
    inputs: Any = None,
    n_random: int = 3,
    log: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """PyTorch module -> firmware run in QEMU, compared byte for byte with the reference; the report.

    `inputs` ([N, ...] float, the module's layout) are quantized with the model's input scale; without
    them `n_random` seeded random int8 inputs are used."""
    from compiler.pipeline import CompileOptions, _quiet, run_model

    out = Path(out)
    g = quantize_torch(module, example_input, calib, out.parent / f"{out.name}.onnx", log, board)
    input_path = None
    if inputs is not None:
        out.mkdir(parents=True, exist_ok=True)
        input_path = out.parent / f"{out.name}_inputs.npy"
        np.save(input_path, _np(inputs))
    return run_model(
        g, out, CompileOptions(board=board, **options), input_path=input_path, n_random=n_random, log=log or _quiet
    )
