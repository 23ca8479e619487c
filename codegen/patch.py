"""Code for a PatchPlan's stage: one loop over patches that calls each stage op's kernel on
the patch's windows (views with row/col strides into the input map, the per-patch buffers
or the stage's output map) with the patch's per-edge padding. Nothing is copied: the
windows are the ones `PatchPlan.patches()` lists, printed as per-step tables.

Per-op parameters (quantization, filter dims, the layer's own padding) are the same structs
the layer-by-layer templates declare; the loop copies them and sets the patch's padding.
Each step calls the kernel the plan records (`Step.kernel`, compiler/schedule/kernels_table.py); a DSP
kernel's packed filter, mt_fast_params and quant records come from the layer's *_dsp template,
called with the same views, padding and the scratch the plan reserved for that step.

A stage with a halo cache (`PatchStage.halo`, plan detail "halo_cache") computes only each patch's new columns;
after a step's call the patch copies the columns cached from its left neighbour into its
window and the columns its right neighbour shares into the cache (per-step load/save
tables of row runs, empty for the first/last patch of a row band).
"""

from __future__ import annotations

from typing import Any

from codegen.base import Emitter, StepCode
from compiler.core.lower import lower
from compiler.errors import ModelError
from compiler.schedule.patch import Operand, PatchPlan

_BASE = {"arena": "A", "input": "input", "output": "output"}


def _view(o: Operand | None) -> list[int]:
    if o is None:
        return [0, 0, 0, 0, 0]
    return [o.h, o.w, o.c, o.row_stride, o.col_stride]


def _param_decls(em: Emitter, i: int) -> list[str]:
    """The layer template's declarations of step i, minus its whole-tensor views."""
    sc = em.step(i, em.g.ops[i])
    keep = []
    for d in sc.decls:
        lines = [ln for ln in d.splitlines() if not ln.startswith(("static const mt_view ", "static const mt_pad "))]
        if any(ln.strip() for ln in lines):
            keep.append("\n".join(lines))
    return keep


def render_stage(em: Emitter, env: Any, k_stage: int = 0) -> list[StepCode]:
    """StepCode for every step of stage k_stage: the first carries the patch loop, the rest a note."""
    plan = em.plan
    assert isinstance(plan, PatchPlan) and plan.patch_stages
    st = plan.patch_stages[k_stage]
    g = em.g
    patches = plan.patches(k_stage)
    tables = []
    decls: list[str] = []
    for k, i in enumerate(st.steps):
        op = g.ops[i]
        decls += _param_decls(em, i)
        calls = []
        for pc in patches:
            c = pc[k]
            ins = list(c.inputs) + [None] * (2 - len(c.inputs))
            if op.kind not in ("conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d", "pad"):
                for o in [*c.inputs, c.output]:
                    if o.col_stride != o.c:
                        raise ModelError(f"codegen: elementwise patch window of {o.tensor} is not row-contiguous")
            calls.append(
                {
                    "in0": ins[0].offset if ins[0] else 0,
                    "in1": ins[1].offset if ins[1] else 0,
                    "out": c.output.offset,
                    "v0": _view(ins[0]),
                    "v1": _view(ins[1]),
                    "vo": _view(c.output),
                    "pad": list(c.pads),
                }
            )
        first = patches[0][k]
        copies = {}
        halo = {"load": [pc[k].load for pc in patches], "save": [pc[k].save for pc in patches]}
        for name, pairs in halo.items():  # halo cache: (src, dst) copies after the call
            if any(c is not None for c in pairs):
                for c in pairs:
                    if c is not None and not all(o.region == "arena" and o.col_stride == o.c for o in c):
                        raise ModelError(f"codegen: halo cache copy of {c[0].tensor} is not an arena row run")
                copies[name] = [
                    {"in": c[0].offset, "out": c[1].offset, "vi": _view(c[0]), "vo": _view(c[1])}
                    if c is not None
                    else {"in": 0, "out": 0, "vi": _view(None), "vo": _view(None)}
                    for c in pairs
                ]
        t: dict[str, Any] = {
            "step": i,
            "kind": op.kind,
            "in_place": first.in_place,
            "calls": calls,
            "x": _BASE[first.inputs[0].region],
            "x2": _BASE[first.inputs[1].region] if len(first.inputs) > 1 else "A",
            "y": _BASE[first.output.region],
            "load": copies.get("load"),
            "save": copies.get("save"),
        }
        fast = em.fast_kernel(i)
        t["fast"] = fast.name if fast is not None else None
        if fast is not None and op.kind in ("conv2d", "depthwise_conv2d"):
            t["w"] = f"{em.p}_s{i}_wpack"  # packed by the layer template's _fast (decls above)
            t["scratch"] = em.scratch_ptr(i)
        elif op.kind in ("conv2d", "depthwise_conv2d"):
            b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
            t["w"] = em.const(op.inputs[1], "int8_t")
            t["b"] = em.const(b, "int32_t") if b else "NULL"
            t["scratch"] = em.scratch_ptr(i)
            t["depth_multiplier"] = op.attrs.get("depth_multiplier", 1)
        elif op.kind == "pad":
            t["pad_value"] = lower(g, op)["pad_value"]
        else:  # add, mul and the elementwise ops: the call the plan records, row by row
            t["fn"] = em.kernel(i).name
        tables.append(t)
    text = env.get_template("patch/stage.c.j2").render(
        p=em.p,
        tables=tables,
        n=len(patches),
        grid=f"{st.grid[0]}x{st.grid[1]}",
        output=st.output,
        first=st.steps[0],
        last=st.steps[-1],
        typedef=k_stage == 0,
    )
    tdecl, _, body = text.partition("/*--body--*/\n")
    out = []
    for k, i in enumerate(st.steps):
        op = g.ops[i]
        sc = StepCode(i, op.name, op.kind, op.describe()[:160])
        if k == 0:
            sc.decls = decls + [tdecl.strip()]
            sc.body = body.rstrip()
        else:
            sc.body = f"        /* computed patch by patch in the loop of step {st.steps[0]} */"
        out.append(sc)
    return out
