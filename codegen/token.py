"""Token-plan stages -> C: the loops over token groups and query blocks of a token plan.

Called from `codegen.emit` for the `token_*` steps of a plan made by
`compiler.schedule.token`. Every kernel call works on a sub-range of rows through pointer
offsets and strides into the token buffer X and the stage's workspace; nothing is copied.
The templates are `templates/ops/token_{embed,attention,mlp}.c.j2`.
"""

from __future__ import annotations

from typing import Any

from codegen.base import Emitter, c_array
from codegen.kernels import fast_params
from compiler.core.ir import Op
from compiler.core.lower import lower
from compiler.schedule.kernels_table import KernelCall, add_records, portable_call
from compiler.schedule.plan import Step
from compiler.schedule.token import AttentionInfo, EmbedInfo, MlpInfo, TokenStage


def _stage(step: Step) -> TokenStage:
    assert isinstance(step.stage, TokenStage), step.op.name
    return step.stage


def _ws(e: Emitter, step: Step, name: str) -> str:
    assert step.scratch is not None
    return f"(A + {step.scratch.offset + _stage(step).ws_offset(name)})"


def _kernel(step: Step, op: Op) -> KernelCall | None:
    """The DSP call the plan records for this op of the stage (`Step.kernels`,
    compiler/schedule/kernels_table.py); None: its portable kernel."""
    c = step.kernels.get(op.name)
    return c if c is not None and c.dsp else None


def _fast(e: Emitter, i: int, tag: str, op: Op, c: KernelCall, step: Step) -> dict[str, Any]:
    """A DSP kernel's packed filter (flash) and mt_fast_quant records; scratch = the stage's "F"."""
    fp = fast_params(e.g, op, c)
    name = f"{e.p}_s{i}_{tag}_wpack"
    e.const_decls.append(c_array(fp["ctype"], name, fp["packed"], align=8))
    e.flash_const_bytes += int(fp["packed"].nbytes) + int(fp["fq"].nbytes)
    scratch = _ws(e, step, "F") if c.scratch_bytes > 0 else "NULL"
    return {"fast": True, "kernel": c.name, "q": fp["q"], "fq": fp["fq"].tolist(), "w": name, "wide": fp["form"],
            "scratch": scratch}  # fmt: skip


def _fc(e: Emitter, i: int, tag: str, op: Op, step: Step) -> dict[str, Any]:
    """One projection of a stage. A factorised (low-rank) one (`AttentionInfo.lowrank` /
    `MlpInfo.lowrank`) also carries "pre" (its first FC, in -> r) and "rbuf" (the workspace rows
    holding the r-wide intermediate): `fc_call` runs both. Both FCs' kernels come from `step.kernels`."""
    inf = _stage(step).unit.info
    lr = inf.lowrank.get(op.name) if isinstance(inf, AttentionInfo | MlpInfo) else None
    if lr is not None:
        return {**_fc1(e, i, tag, op, step), "pre": _fc1(e, i, f"{tag}_lr", lr[0], step), "rbuf": _ws(e, step, lr[1])}
    return _fc1(e, i, tag, op, step)


def _fc1(e: Emitter, i: int, tag: str, op: Op, step: Step) -> dict[str, Any]:
    q = lower(e.g, op)
    out_f, in_f = e.g.t(op.inputs[1]).shape
    c = _kernel(step, op)
    if c is not None:
        return {"tag": tag, "in_f": in_f, "out_f": out_f, **_fast(e, i, tag, op, c, step)}
    b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
    pc = bool(q["per_channel"])
    return {
        "fast": False,
        "tag": tag,
        "q": q,
        "w": e.const(op.inputs[1], "int8_t"),
        "b": e.const(b, "int32_t") if b else "NULL",
        "mult": e.array(f"s{i}_{tag}_mult", "int32_t", q["multiplier"] if pc else q["multiplier"][:1]),
        "shift": e.array(f"s{i}_{tag}_shift", "int32_t", q["shift"] if pc else q["shift"][:1]),
        "per_channel": int(pc),
        "in_f": in_f,
        "out_f": out_f,
    }


def _ln(e: Emitter, i: int, op: Op) -> dict[str, Any]:
    q = lower(e.g, op)
    return {
        "tag": "ln",
        "q": q,
        "gamma": e.array(f"s{i}_ln_gamma", "int32_t", q["gamma_q"]),
        "beta": e.array(f"s{i}_ln_beta", "int32_t", q["beta_q"]),
    }


def _add(e: Emitter, add: Op, operands: dict[str, str], step: Step, tag: str = "add") -> dict[str, Any]:
    q = lower(e.g, add)
    fast = _kernel(step, add) is not None
    return {"tag": tag, "q": q, "in1": operands[add.inputs[0]], "in2": operands[add.inputs[1]], "fast": fast,
            "recs": add_records(q) if fast else None}  # fmt: skip


def _bmm(e: Emitter, step: Step, op: Op, key: str) -> dict[str, str]:
    """The call the plan records for the scores (key "bs") or output (key "bo") matmul."""
    c = step.kernels.get(op.name) or portable_call(e.g, op)
    return {f"{key}_fn": c.name, f"{key}_extra": f", {_ws(e, step, 'F')}" if c.dsp else ""}


def _xy(e: Emitter, step: Step) -> tuple[str, str]:
    u = _stage(step).unit
    return e.ptr(u.x_in), e.ptr(u.x_out)


def mlp_ctx(e: Emitter, i: int, step: Step) -> dict[str, Any]:
    u = _stage(step).unit
    inf = u.info
    assert isinstance(inf, MlpInfo)
    x, y = _xy(e, step)
    d, g = inf.D, _stage(step).group
    L, H = _ws(e, step, "L"), _ws(e, step, "H")
    return {
        "T": inf.T, "D": d, "G": g, "hidden": inf.hidden, "X": x, "Y": y, "L": L, "H": H,
        "overwrite": _stage(step).overwrite,
        "ln": _ln(e, i, inf.ln), "fc1": _fc(e, i, "fc1", inf.fc1, step),
        "fc2": _fc(e, i, "fc2", inf.fc2, step),
        "luts": [e.array(f"s{i}_lut{k}", "int8_t", lower(e.g, a)["lut"]) for k, a in enumerate(inf.acts)],
        "add": _add(e, inf.add, {u.x_in: f"{x} + t0 * {d}", inf.fc2.outputs[0]: L}, step),
    }  # fmt: skip


def attention_ctx(e: Emitter, i: int, step: Step) -> dict[str, Any]:
    u = _stage(step).unit
    inf = u.info
    assert isinstance(inf, AttentionInfo)
    x, y = _xy(e, step)
    d = inf.D
    ws = {n: _ws(e, step, n) for n in ("K", "V", "L", "Q", "S", "O")}
    return {
        "T": inf.T, "D": d, "G": _stage(step).group, "QB": _stage(step).qblock, "X": x, "Y": y, **ws,
        "heads": inf.heads, "dh": inf.dh, "dvh": inf.dvh, "dk": inf.dk, "dv": inf.dv,
        "a": inf.a, "bk": inf.bk, "bv": inf.bv, "yo": inf.yo,
        "ln": _ln(e, i, inf.ln),
        "fq": _fc(e, i, "fq", inf.q, step), "fk": _fc(e, i, "fk", inf.k, step),
        "fv": _fc(e, i, "fv", inf.v, step), "proj": _fc(e, i, "proj", inf.proj, step),
        "bs": lower(e.g, inf.scores), "bo": lower(e.g, inf.attn), "sm": lower(e.g, inf.softmax),
        **_bmm(e, step, inf.scores, "bs"), **_bmm(e, step, inf.attn, "bo"),
        "add": _add(e, inf.add, {u.x_in: f"{x} + t0 * {d}", inf.proj.outputs[0]: ws["L"]}, step),
    }  # fmt: skip


def embed_ctx(e: Emitter, i: int, step: Step) -> dict[str, Any]:
    u = _stage(step).unit
    inf = u.info
    assert isinstance(inf, EmbedInfo)
    conv = inf.conv
    q = lower(e.g, conv)
    x, y = _xy(e, step)
    _, ih, iw, ic = e.g.t(conv.inputs[0]).shape
    _, hp, wp, d = e.g.t(conv.outputs[0]).shape
    _, kh, kw, _ = e.g.t(conv.inputs[1]).shape
    b = conv.inputs[2] if len(conv.inputs) > 2 and conv.inputs[2] else None
    consts = [{"offset": off * d, "src": e.const(n, "int8_t"), "size": e.g.t(n).nbytes} for n, off in inf.consts]
    pos = None
    if inf.pos is not None:
        add: Op = inf.pos
        cat = [n for n in add.inputs if not e.g.t(n).is_const][0]
        operands = {cat: y}
        for n in add.inputs:
            if e.g.t(n).is_const:
                operands[n] = e.const(n, "int8_t")
        pos = _add(e, add, operands, step, "pos")
    c = _kernel(step, conv)
    if c is not None:
        arrays = {"conv_fast": _fast(e, i, "conv", conv, c, step)}
    else:
        arrays = {
            "conv_fast": None, "w": e.const(conv.inputs[1], "int8_t"), "b": e.const(b, "int32_t") if b else "NULL",
            "mult": e.array(f"s{i}_conv_mult", "int32_t", q["multiplier"]),
            "shift": e.array(f"s{i}_conv_shift", "int32_t", q["shift"]),
        }  # fmt: skip
    return {
        "q": q, "x": x, "Y": y, **arrays,
        "kh": kh, "kw": kw, "iw": iw, "ic": ic, "hp": hp, "wp": wp, "D": d, "T": inf.T,
        "tok_off": inf.token_offset, "consts": consts, "pos": pos,
    }  # fmt: skip
