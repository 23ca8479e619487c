"""benchmarks/speed.py --small keeps working (kws + ad01 on the M4 board, fast vs portable)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_speed_small(tmp_path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")
    if not (ROOT.parent / "shared" / "models" / "kws_ref_model.tflite").exists():
        pytest.skip("shared models missing")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import speed

    assert speed.main(["--small", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "speed_small.json").read_text())
    res = {(r["model"], r["kernels"]): r for r in data["results"]}
    assert set(res) == {("kws", "fast"), ("kws", "portable"), ("ad01", "fast"), ("ad01", "portable")}
    for m in ("kws", "ad01"):
        assert res[(m, "fast")]["bit_exact"] and res[(m, "portable")]["bit_exact"]
        assert res[(m, "fast")]["instructions"] < res[(m, "portable")]["instructions"] / 3
        assert res[(m, "fast")]["per_step"], "per-layer breakdown missing"
    md = (tmp_path / "speed_small.md").read_text()
    assert "| kws | stm32f405" in md and "Top 5 layers" in md
