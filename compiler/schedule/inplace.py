"""In-place execution: an op writes its output over an input that dies at that op.

- depthwise conv (depth multiplier 1, stride 1, output map the same size as the input):
  `mt_depthwise_conv_inplace_s8` keeps a ring of (pad_top + 1) output rows in scratch and
  copies each row back once no later output row reads the input row below it;
- elementwise add/mul (no broadcast), relu, logistic, hard_swish, quantize: the C kernels
  read element i of every input before writing element i of the output.

`apply_in_place` rewrites a layer-by-layer buffer list: the output tensor moves into the
input's buffer (whose lifetime grows), and a depthwise step gets its ring as a scratch
buffer. The arithmetic is unchanged, so results stay bit-exact.
"""

from __future__ import annotations

from compiler.core.ir import Graph, Op
from compiler.schedule.plan import Buffer, align, live_bytes
from compiler.target import hostlib

ELEMENTWISE_IN_PLACE = frozenset({"add", "mul", "relu", "logistic", "hard_swish", "quantize"})


def dw_ring_bytes(kernel_hw: tuple[int, int], pad_top: int, pad_left: int, out_w: int, channels: int) -> int:
    """Scratch bytes of mt_depthwise_conv_inplace_s8: its C _get_buffer_size (compiler.target.hostlib)."""
    p = hostlib.conv_params(pads=(int(pad_top), 0, int(pad_left), 0))
    fd = hostlib.dims(1, kernel_hw[0], kernel_hw[1], channels)
    return hostlib.buffer_size("mt_depthwise_conv_inplace_s8", p, fd, hostlib.view(1, out_w, channels))


def dw_in_place_ok(graph: Graph, op: Op) -> bool:
    """Depthwise ops the in-place kernel supports (shape check is the caller's)."""
    if op.kind != "depthwise_conv2d" or graph.t(op.inputs[0]).dtype != "int8":
        return False
    pads = op.attrs["pads"]
    return (
        op.attrs.get("depth_multiplier", 1) == 1
        and tuple(op.attrs["stride"]) == (1, 1)
        and pads[0] >= 0
        and pads[2] >= 0
        and graph.t(op.inputs[0]).shape[-1] == graph.t(op.outputs[0]).shape[-1]
    )


def in_place_inputs(graph: Graph, op: Op) -> list[int]:
    """Positions in op.inputs the output may overwrite, in order of preference."""
    y = graph.t(op.outputs[0])
    if op.kind == "depthwise_conv2d":
        x = graph.t(op.inputs[0])
        return [0] if dw_in_place_ok(graph, op) and x.shape == y.shape else []
    if op.kind in ELEMENTWISE_IN_PLACE:
        out = []
        for k, n in enumerate(op.inputs):
            if n and not graph.t(n).is_const and graph.t(n).shape == y.shape and graph.t(n).dtype == y.dtype:
                out.append(k)
        return out
    return []


def apply_in_place(
    graph: Graph,
    buffers: list[Buffer],
    tensor_buffer: dict[str, Buffer],
    steps: range | list[int] | None = None,
    depthwise: str = "binding",
) -> dict[int, Buffer | None]:
    """Merge outputs into dying inputs for the ops in `steps` (default: all); returns
    step -> its ring scratch buffer (None when the in-place op needs none).

    Elementwise ops go in place wherever they can: their kernels are as fast in place.
    In-place depthwise runs a slower kernel than the fast depthwise, so it is applied only
    to steps that bind the peak (the most live bytes), greedily, while that lowers it;
    depthwise="all" puts every eligible depthwise in place (the smallest arena, slower)."""
    order = list(steps) if steps is not None else list(range(len(graph.ops)))
    done: dict[int, Buffer | None] = {}
    for i in order:
        if graph.ops[i].kind != "depthwise_conv2d" or depthwise == "all":
            _merge(graph, buffers, tensor_buffer, i, done)
    tried: set[int] = set()
    while True:
        live = live_bytes(buffers, len(graph.ops))
        peak = max(live, default=0)
        binding = [
            i
            for i in order
            if live[i] == peak and i not in done and i not in tried and graph.ops[i].kind == "depthwise_conv2d"
        ]
        if not binding:
            break
        for i in binding:
            tried.add(i)
            _merge(graph, buffers, tensor_buffer, i, done)
    return done


def _merge(
    graph: Graph, buffers: list[Buffer], tensor_buffer: dict[str, Buffer], i: int, done: dict[int, Buffer | None]
) -> bool:
    op = graph.ops[i]
    y = op.outputs[0]
    by = tensor_buffer.get(y)
    if by is None or by.region != "arena" or by.first != i:
        return False
    for k in in_place_inputs(graph, op):
        bx = tensor_buffer.get(op.inputs[k])
        if bx is None or bx is by or bx.region != "arena" or bx.last != i or bx.size < by.size:
            continue
        if sum(1 for n in op.inputs if n and tensor_buffer.get(n) is bx) > 1:
            continue  # the same buffer feeds two operands (x + x): keep it simple
        bx.last = max(bx.last, by.last)
        for t in by.tensors:
            bx.tensors.append(t)
            tensor_buffer[t] = bx
        buffers.remove(by)
        scratch = None
        if op.kind == "depthwise_conv2d":
            # the in-place kernel runs instead of a fast kernel: its scratch goes, the ring comes
            buffers[:] = [b for b in buffers if not (b.region == "scratch" and b.first == i)]
            w = graph.t(op.inputs[1]).shape
            ys = graph.t(y).shape
            n = dw_ring_bytes((w[1], w[2]), op.attrs["pads"][0], op.attrs["pads"][2], ys[2], ys[3])
            if n > 0:
                scratch = Buffer(name=f"scratch{i}", size=align(n), first=i, last=i, region="scratch")
                buffers.append(scratch)
        done[i] = scratch
        return True
    return False
