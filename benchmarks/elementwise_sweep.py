"""Random quantization sweep of the TFLite elementwise ops against TFLite-Micro.

    python benchmarks/elementwise_sweep.py [--n 150] [--seed 0] [--out benchmarks/results]

For each of `--n` random draws: ELU and RSQRT int8 on all 256 (valid) input values, RSQRT int16
on 2048 random valid inputs, SQUARED_DIFFERENCE and PRELU int8 and int16 (broadcast) and
L2_NORMALIZATION int8 (rows of small and large norms) on random inputs, with random scales
(multipliers far below and above one) and zero points over the whole range. Each model is
written with `compiler.frontend.tflite_writer`, re-imported (the declarations checked), run in
the `tflite-micro` interpreter and in `compiler.golden.reference`; every output byte must agree.
Writes `elementwise_sweep.md` / `.json` (models and values compared per op, mismatches) and
exits 1 on any mismatch. CI runs the fixed cases of tests/test_tflite_elementwise.py instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.core.ir import Graph, Op, QParams, Tensor  # noqa: E402
from compiler.frontend.tflite import parse_tflite  # noqa: E402
from compiler.frontend.tflite_writer import write_tflite  # noqa: E402
from compiler.golden import reference  # noqa: E402
from compiler.golden.tflm import TflmModel  # noqa: E402


def _graph(kind: str, ins: list[tuple], out: tuple) -> Graph:
    """ins: (shape, dtype, scale, zp) per graph input; out likewise."""
    g = Graph(kind)
    names = []
    for k, (shape, dt, s, z) in enumerate(ins):
        g.add_tensor(Tensor(f"x{k}", shape, dt, QParams(s, z)))
        names.append(f"x{k}")
    g.add_tensor(Tensor("y", out[0], out[1], QParams(out[2], out[3])))
    g.add_op(Op(kind, "op0", names, ["y"], {}))
    g.inputs, g.outputs = names, ["y"]
    return g


def _compare(g: Graph, xs: list[np.ndarray]) -> int:
    """Mismatching output values of the reference vs TFLM."""
    buf = write_tflite(g)
    imported = parse_tflite(buf, name=g.name)
    want = np.asarray(TflmModel(buf).invoke(*xs)[0])
    got = reference.run(imported, xs)[0]
    return int(np.sum(want.reshape(got.shape) != got))


def sweep(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    models: Counter = Counter()
    values: Counter = Counter()
    bad: list[str] = []

    def check(name: str, g: Graph, xs: list[np.ndarray]) -> None:
        d = _compare(g, xs)
        models[name] += 1
        values[name] += int(xs[0].size)
        if d:
            scales = {t: (float(g.t(t).quant.s), g.t(t).quant.zp) for t in g.inputs + g.outputs}
            bad.append(f"{name}: {d} values differ, quantization {scales}")

    def r(lo: float, hi: float) -> float:
        return float(10 ** rng.uniform(lo, hi))

    def z8() -> int:
        return int(rng.integers(-128, 128))

    for _ in range(n):
        s_x, s_y, z_x, z_y = r(-3, 0.7), r(-3, 0.7), z8(), z8()
        every = np.arange(-128, 128, dtype=np.int8).reshape(2, 128)
        check("ELU int8", _graph("elu", [((2, 128), "int8", s_x, z_x)], ((2, 128), "int8", s_y, z_y)), [every])
        valid = np.resize(np.arange(z_x, 128), 256).astype(np.int8).reshape(2, 128)
        check("RSQRT int8", _graph("rsqrt", [((2, 128), "int8", s_x, z_x)], ((2, 128), "int8", s_y, z_y)), [valid])
        g = _graph("rsqrt", [((1, 2048), "int16", r(-6, -1), 0)], ((1, 2048), "int16", r(-6, -1), 0))
        check("RSQRT int16", g, [rng.integers(0, 32768, (1, 2048)).astype(np.int16)])
        for dt, base in (("int8", 0.05), ("int16", 3e-4)):
            info = np.iinfo(dt)

            def z(dt: str = dt) -> int:
                return z8() if dt == "int8" else 0

            sa, sb = (1, 3, 4, 5), [(1, 1, 4, 5), (1, 3, 4, 5), (5,), (1, 3, 1, 1)][int(rng.integers(4))]
            g = _graph("squared_difference", [(sa, dt, base * r(-1, 1), z()), (sb, dt, base * r(-1, 1), z())],
                       (sa, dt, base * base * r(-3, 6), z()))
            check(f"SQUARED_DIFFERENCE {dt}", g, [rng.integers(info.min, info.max + 1, s).astype(dt) for s in (sa, sb)])
            sal = [(1, 1, 5), (5,), (1,), (1, 3, 4, 5)][int(rng.integers(4))]
            g = _graph("prelu", [(sa, dt, base * r(-1, 1), z()), (sal, "int8", r(-3, 0), z8())],
                       (sa, dt, base * r(-1.5, 1.5), z()))
            check(f"PRELU {dt}", g, [rng.integers(info.min, info.max + 1, sa).astype(dt),
                                     rng.integers(-128, 128, sal).astype(np.int8)])
        zl = z8()
        spread = int(10 ** rng.uniform(0, 2.4))
        x = np.clip(zl + rng.integers(-spread, spread + 1, (3, 37)), -128, 127).astype(np.int8)
        check("L2_NORMALIZATION int8", _graph("l2_norm", [((3, 37), "int8", r(-3, 0), zl)], ((3, 37), "int8",
                                                                                            1 / 128, 0)), [x])
    return {"n": n, "seed": seed, "models": dict(models), "values": dict(values), "mismatches": bad}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    a = ap.parse_args()
    res = sweep(a.n, a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "elementwise_sweep.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# Elementwise ops vs TFLite-Micro: {a.n} random quantizations (seed {a.seed})", "",
             f"`python benchmarks/elementwise_sweep.py --n {a.n} --seed {a.seed}`", "",
             "| op | models | values compared | mismatching models |", "|---|---:|---:|---:|"]
    for name in res["models"]:
        nbad = sum(m.startswith(name + ":") for m in res["mismatches"])
        lines.append(f"| {name} | {res['models'][name]} | {res['values'][name]} | {nbad} |")
    lines += ["", *(f"- {m}" for m in res["mismatches"])]
    (out / "elementwise_sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if res["mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
