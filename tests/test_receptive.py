"""Receptive-field analysis: windows and per-edge padding of patches, per axis."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.models.builder import GraphBuilder
from compiler.schedule.receptive import (
    Geometry1D,
    Span,
    Window,
    analyze_axis,
    bands,
    input_window,
    receptive_field,
)


def test_conv3x3_same_interior_and_borders():
    geo = Geometry1D(kernel=3, stride=1, dilation=1, pad_lo=1, pad_hi=1)
    assert input_window(geo, Span(0, 4), 12) == Window(Span(0, 5), 1, 0)  # top border: layer padding
    assert input_window(geo, Span(4, 8), 12) == Window(Span(3, 9), 0, 0)  # interior: halo of 1 each side
    assert input_window(geo, Span(8, 12), 12) == Window(Span(7, 12), 0, 1)  # bottom border


def test_stride2_asymmetric_padding():
    # TFLite SAME, stride 2 on an even map: pad 0 before, 1 after
    geo = Geometry1D(kernel=3, stride=2, dilation=1, pad_lo=0, pad_hi=1)
    assert input_window(geo, Span(0, 3), 12) == Window(Span(0, 7), 0, 0)
    assert input_window(geo, Span(3, 6), 12) == Window(Span(6, 12), 0, 1)


def test_dilation_and_large_kernels():
    geo = Geometry1D(kernel=3, stride=1, dilation=2, pad_lo=2, pad_hi=2)
    assert input_window(geo, Span(5, 6), 10) == Window(Span(3, 8), 0, 0)
    geo7 = Geometry1D(kernel=7, stride=2, dilation=1, pad_lo=3, pad_hi=3)
    assert input_window(geo7, Span(0, 1), 20) == Window(Span(0, 4), 3, 0)
    assert input_window(geo7, Span(9, 10), 20) == Window(Span(15, 20), 0, 2)


def test_pad_op_patch_inside_padding():
    # a pad op is a 1x1 "kernel" whose padding rows are output rows
    geo = Geometry1D(kernel=1, stride=1, dilation=1, pad_lo=2, pad_hi=3)
    assert input_window(geo, Span(0, 4), 6) == Window(Span(0, 2), 2, 0)
    assert input_window(geo, Span(7, 11), 6) == Window(Span(5, 6), 0, 3)
    assert input_window(geo, Span(9, 11), 6) == Window(Span(6, 6), 0, 2)  # only padding
    for w in (input_window(geo, Span(a, b), 6) for a, b in [(0, 4), (3, 9), (7, 11), (0, 11)]):
        assert w.pad_lo + w.span.n + w.pad_hi > 0


@pytest.mark.parametrize("size,parts", [(12, 5), (7, 7), (96, 8), (3, 1)])
def test_bands_cover(size, parts):
    b = bands(size, parts)
    assert b[0].lo == 0 and b[-1].hi == size and all(x.hi == y.lo for x, y in zip(b, b[1:], strict=False))
    assert max(x.n for x in b) - min(x.n for x in b) <= 1


def _residual_graph():
    b = GraphBuilder("res", seed=1)
    x = b.input((1, 16, 16, 4))
    y = b.conv2d(x, 8, 3, stride=2, activation="relu")  # 8x8
    h = b.depthwise_conv2d(y, 5, activation="relu")  # 5x5: the branch needs a halo of 2
    h = b.conv2d(h, 8, 1)
    z = b.add(y, h)
    b.output(b.softmax(b.fully_connected(b.flatten(b.mean(z, axes=(1, 2))), 3)))
    return b.build(n_calib=2)


def test_residual_add_unions_both_branches():
    g = _residual_graph()
    steps = [0, 1, 2, 3]
    out = g.ops[3].outputs[0]
    a = analyze_axis(g, steps, out, 0, Span(4, 8))
    y = g.ops[0].outputs[0]
    # the skip reads rows 4..8 of y, the 5x5 depthwise reads 2..10 -> clipped to 2..8
    assert a.spans[y] == Span(2, 8)
    assert a.windows[(3, 0)] == Window(Span(4, 8), 0, 0)
    assert a.windows[(1, 0)] == Window(Span(2, 8), 0, 2)
    # the stem conv (3x3 s2, SAME: pad 0/1) computes rows 2..8 of y from input rows 4..16
    assert a.spans[g.inputs[0]] == Span(4, 16)


def test_receptive_field_grows_with_depth():
    g = _residual_graph()
    rf = receptive_field(g, [0, 1, 2, 3], g.ops[3].outputs[0])
    assert rf == (11, 11)  # 3x3 s2 stem under a 5x5 depthwise: 2*4 + 3
    assert np.all(np.array(rf) > 0)
