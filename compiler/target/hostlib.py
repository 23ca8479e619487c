"""The C kernels' scratch-size queries, called on the host: `buffer_size(name, *args)`.

The planner reserves for each kernel call exactly the scratch the kernel asks for, so the sizes
come from the same `mt_<kernel>_get_buffer_size()` C functions the firmware links
(`runtime_c/`), never from Python copies of their formulas. `runtime_c/*.c` is compiled once
into a shared library with the host C compiler (`$CC`, else `cc`, `gcc` or `clang`; `-O0`,
portable paths) and loaded with ctypes. The library is cached under the user's cache folder
(`$MICROTILE_CACHE`, else `$XDG_CACHE_HOME/microtile`, else `~/.cache/microtile`), named by a
SHA-256 of the compiler, flags and every `runtime_c` source and header, so it is built at most
once per source tree (and at most once per process: the loaded library is kept).

Raises MicrotileError (one line) when no host C compiler exists, the build fails or the cache
folder is not writable: planning needs the kernels' sizes. CMSIS-NN's `arm_*_get_buffer_size`
and its Python bindings tests are the model (a kernel's scratch is a query on the kernel, not a
number the caller knows).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from compiler.errors import MicrotileError
from compiler.resources import data_dir

FLAGS = ("-std=c99", "-O0", "-fPIC", "-shared")


def _compiler() -> list[str]:
    """The host C compiler's command: $CC (split as a shell would, e.g. "ccache gcc"), else the
    first of cc, gcc, clang on PATH."""
    env = shlex.split(os.environ.get("CC", ""))
    if env:
        if shutil.which(env[0]) is None:
            raise MicrotileError(f"host C compiler CC={env[0]} not found (needed for runtime_c's scratch-size queries)")
        return env
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise MicrotileError(
            "no host C compiler (cc, gcc or clang; or set CC): microtile builds runtime_c's "
            "*_get_buffer_size() functions on the host to size the kernels' scratch"
        )
    return [cc]


def cache_dir() -> Path:
    """Where the host library is kept: $MICROTILE_CACHE, else $XDG_CACHE_HOME/microtile, else
    ~/.cache/microtile."""
    env = os.environ.get("MICROTILE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "microtile"


def _sources() -> tuple[list[Path], str]:
    """The runtime's C files and the key of the library built from them (compiler, flags and
    the bytes of every .c and .h)."""
    rt = data_dir("runtime_c")
    srcs = sorted(rt.glob("*.c"))
    h = hashlib.sha256(" ".join((*_compiler(), *FLAGS)).encode())
    for p in sorted(rt.glob("*.[ch]")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return srcs, h.hexdigest()[:20]


@lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The loaded host build of runtime_c (built into cache_dir() when missing)."""
    srcs, key = _sources()
    out = cache_dir() / f"libmt_host_{key}.so"
    if not out.exists():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=out.stem, suffix=".so.tmp", dir=out.parent)
        except OSError as e:
            raise MicrotileError(f"cannot write the host kernel library into {out.parent} ({e.strerror}); "
                                 "set MICROTILE_CACHE to a writable folder") from None  # fmt: skip
        os.close(fd)
        rt = data_dir("runtime_c")
        cmd = [*_compiler(), *FLAGS, f"-I{rt}", *map(str, srcs), "-o", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            first = (r.stderr.strip().splitlines() or ["?"])[0]
            raise MicrotileError(f"host build of runtime_c for the kernels' scratch sizes failed: {first}")
        os.replace(tmp, out)  # atomic: concurrent builders each write their own temporary file
    return ctypes.CDLL(str(out))


def _arg(a: int | tuple[int, ...]) -> ctypes.c_int32 | ctypes.Array:
    # every struct the size queries take (mt_dims, mt_view, mt_conv_params) is int32 fields only
    if isinstance(a, tuple):
        return (ctypes.c_int32 * len(a))(*a)
    return ctypes.c_int32(a)


@lru_cache(maxsize=65536)
def buffer_size(kernel: str, *args: int | tuple[int, ...]) -> int:
    """Bytes of scratch `<kernel>_get_buffer_size(args...)` asks for. An int argument is an
    int32_t; a tuple is a pointer to a struct of int32_t fields in that order (mt_dims
    (n, h, w, c), mt_view (h, w, c, row_stride, col_stride), mt_conv_params (input_offset,
    output_offset, stride_h, stride_w, dilation_h, dilation_w, pad top, bottom, left, right,
    act_min, act_max)). Raises MicrotileError as the module says; AttributeError for a kernel
    without a size query."""
    fn = getattr(library(), f"{kernel}_get_buffer_size")
    fn.restype = ctypes.c_int32
    return int(fn(*(_arg(a) for a in args)))


def dims(n: int, h: int, w: int, c: int) -> tuple[int, int, int, int]:
    """mt_dims for buffer_size."""
    return (int(n), int(h), int(w), int(c))


def view(h: int, w: int, c: int) -> tuple[int, int, int, int, int]:
    """A contiguous mt_view for buffer_size."""
    return (int(h), int(w), int(c), int(w) * int(c), int(c))


def conv_params(stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1),
                pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> tuple[int, ...]:  # fmt: skip
    """mt_conv_params (offsets and clamp 0) for buffer_size; pads (top, bottom, left, right)."""
    return (0, 0, *map(int, stride), *map(int, dilation), *map(int, pads), 0, 0)


__all__ = ["buffer_size", "cache_dir", "conv_params", "dims", "library", "view"]
