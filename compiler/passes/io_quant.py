"""strip_io_quant: drop QUANTIZE at the graph input and DEQUANTIZE at the graph output.

A TFLite model with float I/O wraps its int8 body in QUANTIZE/DEQUANTIZE. The firmware's
API is int8 in, int8 out (the header states the scales and zero points), so the boundary
conversions move to the caller. Returns a new graph; the input graph is not modified.
"""

from __future__ import annotations

import copy

from compiler.core.ir import Graph


def strip_io_quant(graph: Graph) -> Graph:
    g = copy.copy(graph)
    g.ops = list(graph.ops)
    g.inputs = list(graph.inputs)
    g.outputs = list(graph.outputs)
    for k, name in enumerate(g.inputs):
        t = g.t(name)
        cons = g.consumers(name)
        if t.dtype == "float32" and len(cons) == 1 and cons[0].kind == "quantize":
            g.inputs[k] = cons[0].outputs[0]
            g.ops.remove(cons[0])
    for k, name in enumerate(g.outputs):
        t = g.t(name)
        prod = g.producer(name)
        if t.dtype == "float32" and prod is not None and prod.kind == "dequantize":
            g.outputs[k] = prod.inputs[0]
            g.ops.remove(prod)
    g.verify()
    return g
