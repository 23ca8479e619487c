"""compiler.golden.reference against TFLite-Micro, byte for byte.

Single-op (and small multi-op) int8 models are built with `compiler.models.builder`, serialized with
`compiler.frontend.tflite_writer`, run in TFLM's reference kernels and in the numpy reference
on several random inputs each. The four MLPerf Tiny models in /work/shared/models run on 20
random inputs each.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from compiler.core.ir import Graph, QParams
from compiler.frontend.tflite import load_tflite
from compiler.frontend.tflite_writer import write_tflite
from compiler.golden import reference
from compiler.golden.tflm import TflmModel, tflm_available
from compiler.models.builder import GraphBuilder

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro package not installed")

MODELS = Path(__file__).parents[1].parent / "shared" / "models"
N_INPUTS = 5


def check_graph(g: Graph, n: int = N_INPUTS, seed: int = 0) -> None:
    """Run `g` in TFLM and in the reference on `n` random int8 inputs; assert identical bytes."""
    model = TflmModel(write_tflite(g))
    rng = np.random.default_rng(seed)
    for trial in range(n):
        xs = [rng.integers(-128, 128, g.t(name).shape, dtype=np.int8) for name in g.inputs]
        want = model.invoke(*xs, n_outputs=len(g.outputs))
        got = reference.run(g, xs)
        for name, w, r in zip(g.outputs, want, got, strict=True):
            w = np.asarray(w).reshape(r.shape)
            if not np.array_equal(w, r):
                bad = np.flatnonzero(w != r)
                raise AssertionError(
                    f"{g.name}: output {name} differs from TFLM on input {trial}: "
                    f"{bad.size}/{w.size} values, first at {bad[0]}: tflm {w.flat[bad[0]]} ref {r.flat[bad[0]]}\n"
                    f"{g.dump()}"
                )


def single(
    shapes: list[tuple[int, ...]],
    layer: Callable[..., str],
    seed: int = 0,
    input_range: tuple[float, float] | None = None,
    name: str = "op",
) -> Graph:
    """A model of one layer (plus whatever `layer` adds) over fresh graph inputs."""
    b = GraphBuilder(name, seed=seed)
    xs = [b.input(s) for s in shapes]
    b.output(layer(b, *xs))
    return b.build(n_calib=4, input_range=input_range)


ACTS = ("none", "relu", "relu6")

# -- convolutions -------------------------------------------------------------------------------

CONV_CASES = list(itertools.product((1, 3, 5, 7), (1, 2), ("same", "valid"), (1, 2)))


@pytest.mark.parametrize("kernel,stride,padding,dilation", CONV_CASES)
def test_conv2d(kernel: int, stride: int, padding: str, dilation: int) -> None:
    for i, act in enumerate(ACTS):
        shape = (1, 15, 13, 3 + 2 * i)
        g = single(
            [shape],
            lambda b, x, act=act: b.conv2d(x, 5, kernel, stride, padding, dilation, activation=act),
            seed=kernel * 100 + stride * 10 + dilation + i,
            name=f"conv_k{kernel}_s{stride}_{padding}_d{dilation}_{act}",
        )
        check_graph(g, n=3)


@pytest.mark.parametrize("kernel,stride,padding,dilation", CONV_CASES)
def test_depthwise_conv2d(kernel: int, stride: int, padding: str, dilation: int) -> None:
    for mult, act in itertools.product((1, 2), ACTS):
        g = single(
            [(1, 14, 15, 4)],
            lambda b, x, act=act, mult=mult: b.depthwise_conv2d(
                x, kernel, stride, padding, dilation, depth_multiplier=mult, activation=act
            ),
            seed=kernel * 100 + stride * 10 + dilation + mult,
            name=f"dw_k{kernel}_s{stride}_{padding}_d{dilation}_m{mult}_{act}",
        )
        check_graph(g, n=3)


def test_conv2d_rectangular_kernel_and_stride() -> None:
    g = single([(1, 12, 10, 6)], lambda b, x: b.conv2d(x, 7, (3, 1), (2, 1), "same", (1, 2), "relu"))
    check_graph(g)
    g = single([(1, 12, 10, 6)], lambda b, x: b.depthwise_conv2d(x, (1, 5), (1, 2), "valid", 1, 3, "relu6"))
    check_graph(g)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("per_channel", (False, True))
@pytest.mark.parametrize("shape", ((1, 20), (1, 3, 3, 4)))
def test_fully_connected(shape: tuple[int, ...], per_channel: bool, act: str) -> None:
    g = single([shape], lambda b, x: b.fully_connected(x, 9, activation=act, per_channel=per_channel))
    check_graph(g)


# -- elementwise ---------------------------------------------------------------------------------

BINARY_SHAPES = [
    ((1, 6, 5, 8), (1, 6, 5, 8)),
    ((1, 6, 5, 8), (1, 1, 1, 8)),
    ((1, 1, 1, 8), (1, 6, 5, 8)),
    ((1, 6, 5, 8), (1, 6, 5, 1)),
    ((1, 6, 1, 8), (1, 1, 5, 1)),
    ((1, 10), (1, 10)),
]


@pytest.mark.parametrize("kind", ("add", "mul"))
@pytest.mark.parametrize("shapes", BINARY_SHAPES)
def test_binary(kind: str, shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    for i, act in enumerate(ACTS):
        # different input ranges so the two inputs' scales differ
        def layer(b: GraphBuilder, x: str, y: str, act: str = act) -> str:
            y2 = b.conv2d(y, shapes[1][-1], 1) if len(shapes[1]) == 4 else b.fully_connected(y, shapes[1][-1])
            return getattr(b, kind)(x, y2, activation=act)

        g = single(list(shapes), layer, seed=i, name=f"{kind}_{act}")
        check_graph(g, n=3)


@pytest.mark.parametrize("kind", ("add", "mul"))
def test_binary_with_constant(kind: str) -> None:
    rng = np.random.default_rng(3)
    c = rng.normal(0, 2, (1, 1, 1, 6)).astype(np.float32)
    g = single([(1, 5, 5, 6)], lambda b, x: getattr(b, kind)(x, b.constant(c)))
    check_graph(g)


def test_residual_add() -> None:
    def layer(b: GraphBuilder, x: str) -> str:
        h = b.conv2d(x, 8, 1, activation="relu6")
        h = b.depthwise_conv2d(h, 3, activation="relu6")
        h = b.conv2d(h, 4, 1)
        return b.add(x, h)

    check_graph(single([(1, 8, 8, 4)], layer))


# -- pooling, reductions, data movement ------------------------------------------------------------


@pytest.mark.parametrize("kind", ("avg_pool2d", "max_pool2d"))
@pytest.mark.parametrize("kernel,stride,padding", list(itertools.product((2, 3, (2, 3)), (1, 2), ("same", "valid"))))
def test_pool(kind: str, kernel, stride: int, padding: str) -> None:
    for act in ACTS:
        g = single(
            [(1, 11, 9, 5)],
            lambda b, x, act=act: getattr(b, kind)(x, kernel, stride, padding, activation=act),
            input_range=(-3.0, 5.0),
        )
        check_graph(g, n=3)


def test_global_avg_pool() -> None:
    check_graph(single([(1, 7, 7, 16)], lambda b, x: b.global_avg_pool(x)))


@pytest.mark.parametrize(
    "shape,axes,keep",
    [
        ((1, 6, 5, 8), (1, 2), False),
        ((1, 6, 5, 8), (1, 2), True),
        ((1, 7, 7, 32), (1, 2), False),
        ((1, 6, 5, 8), (1,), True),
        ((1, 6, 5, 8), (2,), False),
        ((1, 6, 5, 8), (3,), True),
        ((1, 6, 5, 8), (1, 2, 3), False),
        ((1, 12, 10), (1,), False),
    ],
)
def test_mean(shape: tuple[int, ...], axes: tuple[int, ...], keep: bool) -> None:
    # a conv in front gives the mean a calibrated input range of its own
    def layer(b: GraphBuilder, x: str) -> str:
        return b.mean(x, axes, keep_dims=keep)

    check_graph(single([shape], layer, input_range=(-2.0, 6.0)))
    check_graph(single([shape], layer))


@pytest.mark.parametrize(
    "paddings",
    [
        ((0, 0), (1, 1), (1, 1), (0, 0)),
        ((0, 0), (0, 2), (3, 0), (0, 0)),
        ((0, 0), (1, 0), (0, 1), (2, 3)),
    ],
)
def test_pad(paddings) -> None:
    check_graph(single([(1, 5, 4, 3)], lambda b, x: b.pad(x, paddings), input_range=(0.5, 4.0)))
    check_graph(single([(1, 5, 4, 3)], lambda b, x: b.pad(x, paddings), input_range=(-4.0, -0.5)))


def test_pad_then_valid_conv() -> None:
    def layer(b: GraphBuilder, x: str) -> str:
        return b.conv2d(b.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0))), 8, 3, 2, "valid", activation="relu6")

    check_graph(single([(1, 16, 16, 3)], layer))


@pytest.mark.parametrize("target", [(1, 96), (1, 4, 24), (1, 12, 8), (1, 2, 2, 24)])
def test_reshape(target: tuple[int, ...]) -> None:
    def layer(b: GraphBuilder, x: str) -> str:
        return b.fully_connected(b.reshape(x, target), 5) if len(target) == 2 else b.reshape(x, target)

    check_graph(single([(1, 4, 4, 6)], layer))


@pytest.mark.parametrize("axis", (1, 2, 3, -1))
def test_concat(axis: int) -> None:
    def layer(b: GraphBuilder, x: str, y: str) -> str:
        a = b.conv2d(x, 4, 3, activation="relu")
        c = b.depthwise_conv2d(y, 3)
        return b.concat([a, c, x], axis=axis)

    check_graph(single([(1, 6, 6, 4), (1, 6, 6, 4)], layer))


def test_concat_of_softmax_requantizes() -> None:
    def layer(b: GraphBuilder, x: str, y: str) -> str:
        return b.concat([b.softmax(x), b.fully_connected(y, 6)], axis=1)

    check_graph(single([(1, 6), (1, 6)], layer))


# -- activations -------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", (1.0, 0.5, 2.0))
@pytest.mark.parametrize("shape,rng", [((1, 10), (-8.0, 8.0)), ((1, 4, 4, 8), (-3.0, 2.0)), ((1, 1000), (-4.0, 4.0))])
def test_softmax(shape: tuple[int, ...], rng: tuple[float, float], beta: float) -> None:
    check_graph(single([shape], lambda b, x: b.softmax(x, beta), input_range=rng))


@pytest.mark.parametrize("kind", ("logistic", "hard_swish", "relu", "relu6"))
@pytest.mark.parametrize("rng", [(-8.0, 8.0), (-1.0, 1.0), (-10.0, 3.0), (0.5, 20.0), (-0.1, 0.1)])
def test_activation(kind: str, rng: tuple[float, float]) -> None:
    check_graph(single([(1, 8, 8, 4)], lambda b, x: getattr(b, kind)(x), input_range=rng))


@pytest.mark.parametrize("kind", ("logistic", "hard_swish", "relu", "relu6"))
def test_activation_after_conv(kind: str) -> None:
    check_graph(single([(1, 8, 8, 4)], lambda b, x: getattr(b, kind)(b.conv2d(x, 6, 3))))


@pytest.mark.parametrize("range_scale", (0.3, 0.8, 1.5, 4.0))
def test_quantize_int8(range_scale: float) -> None:
    check_graph(single([(1, 6, 6, 5)], lambda b, x: b.quantize(x, range_scale), input_range=(-2.0, 5.0)))


def test_squeeze_excite_block() -> None:
    """Small multi-op graph: mean -> fc -> logistic -> broadcast mul, hard_swish."""

    def layer(b: GraphBuilder, x: str) -> str:
        h = b.hard_swish(b.conv2d(x, 8, 3))
        s = b.mean(h, (1, 2), keep_dims=True)
        s = b.logistic(b.conv2d(s, 8, 1, activation="relu"))
        return b.max_pool2d(b.mul(h, s), 2)

    check_graph(single([(1, 8, 8, 3)], layer))


def test_relu6_clamp_rounds_in_float32() -> None:
    """6 / (20/255) is 76.4999... in double but 76.5 in float32: TFLite rounds the float (to 77)."""
    tie = QParams(np.float32(20.0 / 255.0), -128)
    g = single([(1, 6, 6, 4)], lambda b, x: b.conv2d(x, 8, 3, activation="relu6"), input_range=(-8.0, 8.0))
    g.t(g.outputs[0]).quant = tie
    check_graph(g)
    g = single([(1, 6, 6, 4)], lambda b, x: b.relu6(x), input_range=(0.5, 20.0))
    g.t(g.inputs[0]).quant = g.t(g.outputs[0]).quant = tie
    check_graph(g)


@pytest.mark.parametrize(
    "factory,args,n",
    [
        ("tiny_cnn", (), 5),
        ("mobilenet_v1", (0.25, 96, 10), 3),
        ("mobilenet_v2", (0.35, 96, 10), 3),
        ("mobilenet_v2", (1.0, 224, 1000), 1),
    ],
)
def test_builder_models(factory: str, args: tuple, n: int) -> None:
    from compiler.models import builder

    check_graph(getattr(builder, factory)(*args), n=n)


# -- the shared MLPerf Tiny models ---------------------------------------------------------------


def _shared_models() -> list[Path]:
    if not MODELS.is_dir():
        return []
    return sorted(MODELS.glob("*.tflite"))


@pytest.mark.parametrize("path", _shared_models() or [None], ids=lambda p: p.stem if p else "absent")
def test_shared_models(path: Path | None) -> None:
    if path is None:
        print(f"shared models not found at {MODELS}")
        pytest.skip(f"shared models not found at {MODELS}")
    g = load_tflite(path)
    model = TflmModel(path)
    rng = np.random.default_rng(42)
    for trial in range(20):
        x = rng.integers(-128, 128, g.t(g.inputs[0]).shape, dtype=np.int8)
        want = np.asarray(model.invoke(x)[0])
        got = reference.run(g, [x])[0]
        assert np.array_equal(want.reshape(got.shape), got), f"{path.name}: differs on input {trial}"
