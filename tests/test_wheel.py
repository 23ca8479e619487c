"""The package as a user installs it: a built wheel in a fresh venv outside the checkout ships the
board files, the C kernels, the Renode scripts and the templates, and runs the demo model
bit-exact in the emulator from an unrelated working directory (issue: `pip install .` had no
boards)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT, needs_firmware

CONSTRAINTS = ROOT / "constraints.txt"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without PYTHONPATH: nothing of the checkout may leak into the fresh venv."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, cwd=cwd, env=env or _clean_env(), capture_output=True, text=True, timeout=900)
    what = " ".join(map(str, cmd))
    assert r.returncode == 0, f"{what} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ folder of a fresh venv (outside the checkout) with only the built wheel and its runtime
    dependencies (pinned by constraints.txt) installed."""
    d = tmp_path_factory.mktemp("wheel")
    dist = d / "dist"
    # build from a copy of the checkout (setuptools writes build/ and *.egg-info beside the sources)
    # with the test venv's pinned setuptools: no network for the backend
    src = d / "src"
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "out", "*.egg-info", "__pycache__")
    )
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)], d)
    wheels = list(dist.glob("microtile-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = d / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    env = _clean_env(PIP_CONSTRAINT=str(CONSTRAINTS), PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])], d, env)
    return env_dir / "bin"


def test_wheel_lists_boards(installed, tmp_path) -> None:
    r = _run([str(installed / "microtile"), "boards"], tmp_path)
    assert "stm32f405" in r.stdout and "stm32f746g-disco" in r.stdout
    r = _run([str(installed / "microtile"), "--version"], tmp_path)
    assert r.stdout.startswith("microtile ")
    # the installed package reads its data from site-packages, not from this checkout
    probe = "import compiler.resources as r; print(r.data_dir('boards')); print(r.source_root())"
    r = _run([str(installed / "python"), "-c", probe], tmp_path)
    boards, root = r.stdout.split()
    assert "site-packages" in boards and str(ROOT) not in boards and root == "None"


@needs_firmware
def test_wheel_runs_demo_bit_exact(installed, tmp_path) -> None:
    model = ROOT / "examples" / "models" / "tiny_cnn.tflite"
    out = tmp_path / "demo"
    _run([str(installed / "microtile"), "run", str(model), "--board", "stm32f405", "--out", str(out)], tmp_path)
    report = json.loads((out / "report.json").read_text())
    assert report["bit_exact"] is True and report["mismatched_inputs"] == 0
    assert report["instructions"] > report["macs"] // 2
    assert (out / "runtime" / "mt_nn.h").exists()
