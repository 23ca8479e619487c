"""Shared fixtures: the MLPerf Tiny models in ../shared/models and tool availability."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
MODELS = ("vww_96_int8", "pretrainedResnet_quant", "kws_ref_model", "ad01_int8")
BOARDS = ("stm32f405", "stm32f746g-disco")


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"shared model {path} not found (tests read ../shared/models in place)")
    return path


def have_firmware_tools() -> str | None:
    """None when arm-none-eabi-gcc, make and qemu-system-arm are all on PATH, else the reason."""
    tools = (("arm-none-eabi-gcc", "gcc-arm-none-eabi"), ("make", "make"), ("qemu-system-arm", "qemu-system-arm"))
    for tool, pkg in tools:
        if shutil.which(tool) is None:
            return f"{tool} not on PATH (Debian package {pkg})"
    return None


needs_firmware = pytest.mark.skipif(have_firmware_tools() is not None, reason=str(have_firmware_tools()))
