"""Renode: the scripts in renode/ and ``microtile run --emulator renode``.

Renode is not installable on the machines CI runs on, so most of this is static: the .resc files
and the Robot suite must reference files, variables, platforms and UARTs that exist. The live test
runs only where ``renode-test`` is on PATH; a stand-in ``renode-test`` that runs the same firmware
in QEMU (the STM32F405 build is the same for both) checks the runner's plumbing here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest
from conftest import needs_firmware, shared_model

from compiler.errors import MicrotileError
from compiler.pipeline import CompileOptions, run_model
from compiler.target.boards import load_board

ROOT = Path(__file__).resolve().parents[1]
RENODE = ROOT / "renode"


def _runner():
    spec = importlib.util.spec_from_file_location("run_renode_under_test", RENODE / "run_renode.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNNER = _runner()


def _commands(path: Path) -> list[str]:
    """Monitor commands of a .resc file: no header (:name:), comments or blank lines."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ":")):
            lines.append(line)
    return lines


def _robot_variables(text: str) -> dict[str, str]:
    section = re.search(r"\*\*\* Variables \*\*\*\n(.*?)(?=\n\*\*\* )", text, re.S)
    assert section, "microtile.robot has no *** Variables *** section"
    found = {}
    for line in section.group(1).splitlines():
        m = re.match(r"\$\{(\w+)\}\s{2,}(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


# -- static checks (run everywhere) --------------------------------------------------------------


@pytest.mark.parametrize("board", RUNNER.RENODE_BOARDS)
def test_machine_scripts_fetch_nothing_and_clock_from_the_board(board: str) -> None:
    """(a) The stock .repl's sysbus init applies an SVD from dl.antmicro.com: the machine scripts
    replace that init (an updating entry's `init:` overrides the included one), so nothing is
    fetched. (b) SysTick counts at the clock the firmware divides by (the board's cpu_clock_hz for
    a "part" build) and the CPU runs 1000 MIPS, so ticks * 1e9 / clock counts instructions."""
    b = load_board(board)
    text = (RENODE / f"{board}-machine.resc").read_text()
    assert "ApplySVD" not in text.replace("without its `sysbus init` ApplySVD", "")
    assert "http" not in "\n".join(_commands(RENODE / f"{board}-machine.resc"))
    block = re.search(r'LoadPlatformDescriptionFromString """\n(.*?)\n"""', text, re.S)
    assert block, "no inline platform description"
    lines = block.group(1).splitlines()
    assert lines[0] == f'using "{RUNNER.RENODE_PLATFORMS[board]}"'
    if RUNNER.RENODE_STOCK_SVD[board] is not None:  # the stock init fetches it: replaced
        assert RUNNER.RENODE_STOCK_SVD[board] in text
        i = lines.index("sysbus:")
        assert lines[i + 1] == "    init:" and lines[i + 2].startswith("        Tag <")
    assert all("ApplySVD" not in line for line in lines)
    commands = _commands(RENODE / f"{board}-machine.resc")
    assert f"$systick_hz?={b.cpu_clock_hz}" in commands and b.systick_clock_for("part") == b.cpu_clock_hz
    assert f"$mips?={RUNNER.RENODE_MIPS}" in commands
    assert "sysbus.nvic Frequency $systick_hz" in commands and "sysbus.cpu PerformanceInMips $mips" in commands
    # ... after the platform is loaded, before the reset macro loads the ELF
    assert commands.index("sysbus.nvic Frequency $systick_hz") < commands.index("runMacro $reset")
    # the firmware built for the part divides by the same clock
    from compiler.target.boards import render_board_files

    header = render_board_files(b, target="part")["mt_board.h"]
    assert f"#define MT_SYSTICK_CLOCK_HZ {b.cpu_clock_hz}u" in header


def test_robot_reads_the_line_and_escapes_paths() -> None:
    """(c) Wait For Line On Uart returns a TerminalTesterResult: its text is `${result.Line}`.
    (d) Renode's PathToken ends at a space unless escaped as '\\ ': every @path goes through the
    suite's `Renode Path` keyword (and run_renode.renode_path)."""
    text = (RENODE / "microtile.robot").read_text()
    assert "Should Match Regexp    ${result.Line}" in text and "Convert To String    ${result}" not in text
    assert re.findall(r"@\$\{", text) == ["@${"], "an @${...} path not built by Renode Path"
    assert "RETURN    @${escaped}" in text
    assert "Replace String    ${path}    ${SPACE}    \\\\${SPACE}" in text
    assert "Library             String" in text
    assert RUNNER.renode_path("/tmp/my models/fw.elf") == "@/tmp/my\\ models/fw.elf"



def test_renode_files_exist() -> None:
    for name in ("README.md", "microtile.robot", "run_renode.py"):
        assert (RENODE / name).is_file(), name
    for board in RUNNER.RENODE_BOARDS:
        assert (RENODE / f"{board}.resc").is_file()
        assert (RENODE / f"{board}-machine.resc").is_file()


@pytest.mark.parametrize("board", ["stm32f405", "stm32f746g-disco"])
def test_resc_scripts_are_consistent_with_the_board(board: str) -> None:
    b = load_board(board)
    machine = _commands(RENODE / f"{board}-machine.resc")
    interactive = _commands(RENODE / f"{board}.resc")
    # The interactive script includes the machine script by a path that exists, then starts.
    includes = [line.split(None, 1)[1] for line in interactive if line.startswith("include ")]
    assert includes == [f"$ORIGIN/{board}-machine.resc"]
    assert (RENODE / includes[0].removeprefix("$ORIGIN/")).is_file()
    assert interactive[-1] == "start"
    # The machine script never starts (the Robot suite attaches its tester first).
    assert "start" not in machine
    # Renode's stock platform for the part, included by an inline description.
    platform = RUNNER.RENODE_PLATFORMS[board]
    assert 'machine LoadPlatformDescriptionFromString """' in machine
    assert f'using "{platform}"' in machine
    assert re.fullmatch(r"platforms/cpus/stm32(f4|f746|h743)\.repl", platform)
    # $elf: defaulted with ?= (the caller sets it first) and loaded by the reset macro.
    assert any(line.startswith("$elf?=") for line in machine)
    assert "sysbus LoadELF $elf" in machine and "runMacro $reset" in machine
    # The vector table is at the start of the part's flash, where the "part" target links.
    flash, _ = b.memories_for("part")
    assert f"sysbus.cpu VectorTableOffset 0x{flash.origin:08X}" in machine
    # The UART shown is the part's console UART from the board TOML.
    console = b.console_for("part")
    assert console is not None and console.kind.startswith("stm32-usart")
    assert f"showAnalyzer sysbus.{console.uart.lower()}" in interactive
    # Every $variable a script uses is defined in it, set by its caller ($elf) or Renode's ($ORIGIN).
    for text, script in ((machine, "machine"), (interactive, "interactive")):
        used = set(re.findall(r"\$(\w+)", "\n".join(text)))
        defined = {m.group(1) for line in text for m in [re.match(r"\$(\w+)\?=", line)] if m}
        assert used <= defined | {"ORIGIN", "reset", "elf"}, (script, used - defined)


def test_robot_suite_references_what_exists() -> None:
    text = (RENODE / "microtile.robot").read_text()
    variables = _robot_variables(text)
    # run_renode passes exactly variables the suite defines; UART is the boards' console.
    assert set(RUNNER.ROBOT_VARIABLES) <= set(variables)
    assert variables["UART"] == "sysbus.usart1"
    for board in RUNNER.RENODE_BOARDS:
        console = load_board(board).console_for("part")
        assert console is not None and f"sysbus.{console.uart.lower()}" == variables["UART"]
    assert variables["BOARD"] in RUNNER.RENODE_BOARDS
    # Every variable the suite uses is defined in it, or by Renode's test runner.
    used = set(re.findall(r"\$\{(\w+)\}", text))
    builtin = {"RENODEKEYWORDS", "CURDIR", "EMPTY", "SPACE", "i", "result", "elf", "dir", "log", "path", "escaped"}
    assert used <= set(variables) | builtin, used - set(variables) - builtin
    # The machine script it includes exists for every board; paths go through Renode Path.
    assert "${dir}=    Renode Path    ${CURDIR}" in text
    assert "include ${dir}/${BOARD}-machine.resc" in text
    # Renode's keywords (src/Renode/RobotFrameworkEngine) and the lines the harness prints.
    for keyword in ("Create Terminal Tester", "Start Emulation", "Wait For Line On Uart", "Execute Command"):
        assert keyword in text
    for mark in ("MT_BEGIN", "MT_OUT", "MT_RESULT ${i} rc.0", "MT_END ${INPUTS}", "MT_DONE", "CreateFileBackend"):
        assert mark in text
    assert "Resource            ${RENODEKEYWORDS}" in text


def test_robot_suite_parses() -> None:
    parsing = pytest.importorskip("robot.api.parsing", reason="robotframework not installed (renode-test brings it)")
    model = parsing.get_model(str(RENODE / "microtile.robot"))
    errors = []

    class Errors(parsing.ModelVisitor):
        def generic_visit(self, node):
            errors.extend(getattr(node, "errors", ()) or ())
            super().generic_visit(node)

    Errors().visit(model)
    assert not errors, errors


def test_renode_test_command(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "bin" / "renode-test"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = RUNNER.renode_test_command(tmp_path / "fw.elf", "stm32f405", 3, tmp_path / "uart.log", tmp_path / "r", 60)
    assert cmd[0] == str(fake) and cmd[-1] == str(RENODE / "microtile.robot")
    assert f"ELF:{(tmp_path / 'fw.elf').resolve()}" in cmd and "INPUTS:3" in cmd and "BOARD:stm32f405" in cmd
    assert "SYSTICK_HZ:168000000" in cmd and "MIPS:1000" in cmd


def test_run_without_renode_says_so(tmp_path: Path, monkeypatch) -> None:
    if shutil.which("renode-test"):
        pytest.skip("renode-test is installed here")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MicrotileError, match="renode not found.*QEMU runs here") as info:
        run_model(shared_model("kws_ref_model"), tmp_path / "out", CompileOptions(), emulator="renode")
    assert isinstance(info.value, RUNNER.RenodeNotFound.__mro__[1])
    assert not (tmp_path / "out").exists()  # nothing built before saying so


def test_unknown_emulator(tmp_path: Path) -> None:
    with pytest.raises(MicrotileError, match="unknown emulator"):
        run_model(shared_model("kws_ref_model"), tmp_path / "out", CompileOptions(), emulator="gem5")


def test_renode_rejects_emulator_only_board(tmp_path: Path) -> None:
    with pytest.raises(MicrotileError, match="no Renode machine"):
        RUNNER.build_for_renode(None, tmp_path, CompileOptions(board="mps2-an500-large"), None)


# -- the runner's plumbing, with a stand-in renode-test that runs QEMU ------------------------------

STAND_IN = """#!{python}
# Stand-in for renode-test: runs the ELF in QEMU netduinoplus2 (the STM32F405 "part" build is the
# QEMU build), writes the console to UART_LOG and fails like microtile.robot would.
import re, sys
sys.path.insert(0, {root!r})
from compiler.target.boards import load_board
from compiler.target.emulator import run_qemu
args = sys.argv[1:]
assert args[0] == "-r" and args[-1].endswith("microtile.robot"), args
v = dict(a.split(":", 1) for a in args[3:-1:2])
assert [args[i] for i in range(2, len(args) - 1, 2)] == ["--variable"] * len(v), args
assert v["BOARD"] == "stm32f405", v
er = run_qemu(v["ELF"], load_board("stm32f405"), timeout_s=float(v["TIMEOUT"]), console="uart")
open(v["UART_LOG"], "w").write(er.stdout)
n = int(v["INPUTS"])
ok = er.exit_code == 0 and all(re.search(r"^MT_RESULT %d rc=0 " % i, er.stdout, re.M) for i in range(n))
sys.exit(0 if ok and "MT_END %d" % n in er.stdout else 1)
"""


@needs_firmware
def test_renode_runner_plumbing_with_a_qemu_stand_in(tmp_path: Path, monkeypatch) -> None:
    if shutil.which("renode-test"):
        pytest.skip("renode-test is installed here: test_renode_suite runs the real thing")
    fake = tmp_path / "bin" / "renode-test"
    fake.parent.mkdir()
    fake.write_text(STAND_IN.format(python=sys.executable, root=str(ROOT)))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    out = tmp_path / "out"
    report = run_model(
        shared_model("kws_ref_model"), out, CompileOptions(board="stm32f405"), n_random=2, emulator="renode"
    )
    assert report["bit_exact"] and report["inputs"] == 2
    assert report["emulator"].startswith("renode platforms/cpus/stm32f4.repl")
    assert report["stack_bytes"] > 0 and report["peak_sram_bytes"] > report["arena_bytes"]
    assert (out / "renode-uart.log").read_text().count("MT_RESULT") == 2
    assert "-DMT_CONSOLE_UART" in (out / "build" / "flags.txt").read_text()


# -- the real thing, where Renode is installed --------------------------------------------------


@pytest.mark.parametrize("board", ["stm32f405", "stm32f746g-disco", "stm32h743"])
def test_renode_suite(board: str, tmp_path: Path) -> None:
    if shutil.which("renode-test") is None:
        reason = "renode-test not on PATH: Renode is not installed here (the QEMU tests cover the firmware)"
        print(f"SKIP {board}: {reason}")
        pytest.skip(reason)
    report = run_model(
        shared_model("kws_ref_model"),
        tmp_path / "out",
        CompileOptions(board=board),
        n_random=3,
        seed=5,
        emulator="renode",
    )
    assert report["bit_exact"], report
    assert report["max_abs_diff"] == 0 and report["inputs"] == 3
