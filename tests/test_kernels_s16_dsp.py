"""The 16x8 Cortex-M DSP kernels (mt_conv_s16_dsp, mt_depthwise_conv_s16_dsp,
mt_fully_connected_s16_dsp) vs the portable 16x8 kernels, and a 16x8 model in QEMU."""

from __future__ import annotations

import numpy as np
from test_tflite_support import G, _bias, _w8

from compiler.ir import Graph


def s16_model(hw: int = 16, c: int = 16, seed: int = 0) -> Graph:
    """A 16x8 block: QUANTIZE int8->int16, conv 3x3 (c->c), depthwise 3x3, conv 1x1 (c->2c),
    conv 3x3 stride 2 (2c->c, int32 bias), mean-free reshape + FC (->10), QUANTIZE back."""
    rng = np.random.default_rng(seed)
    b = G("s16_block", seed)
    x8 = b.input((1, hw, hw, c), "int8", 0.05, -3)
    x = b.t((1, hw, hw, c), "int16", 2.5e-4, 0)
    b.op("quantize", [x8], x)
    s = 6.0 * np.sqrt(9 * c) / 32768
    c1 = b.t((1, hw, hw, c), "int16", s, 0)
    b.op("conv2d", [x, _w8(b, (c, 3, 3, c), 0, rng), *_bias(b, c, "int64", rng)], c1, stride=(1, 1),
         dilation=(1, 1), pads=(1, 1, 1, 1), activation="relu")
    d = b.t((1, hw, hw, c), "int16", s * 2, 0)
    b.op("depthwise_conv2d", [c1, _w8(b, (1, 3, 3, c), 3, rng), *_bias(b, c, "int64", rng)], d, stride=(1, 1),
         dilation=(1, 1), pads=(1, 1, 1, 1), activation="none", depth_multiplier=1)
    e = b.t((1, hw, hw, 2 * c), "int16", s * 3, 0)
    b.op("conv2d", [d, _w8(b, (2 * c, 1, 1, c), 0, rng), *_bias(b, 2 * c, "int64", rng)], e, stride=(1, 1),
         dilation=(1, 1), pads=(0, 0, 0, 0), activation="none")
    h2 = hw // 2
    f = b.t((1, h2, h2, c), "int16", s * 4, 0)
    b.op("conv2d", [e, _w8(b, (c, 3, 3, 2 * c), 0, rng), *_bias(b, c, "int32", rng)], f, stride=(2, 2),
         dilation=(1, 1), pads=(0, 1, 0, 1), activation="relu6")
    r = b.t((1, h2 * h2 * c), "int16", s * 4, 0)
    b.op("reshape", [f], r)
    o = b.t((1, 10), "int16", 0.03, 0)
    n = h2 * h2 * c
    b.op("fully_connected", [r, b.t((10, n), "int8", 0.01, 0, rng.integers(-127, 128, (10, n)).astype(np.int8)),
                             *_bias(b, 10, "int64", rng)], o, activation="none")
    y = b.t((1, 10), "int8", 4.0, 2)
    b.op("quantize", [o], y)
    return b.output(y)
