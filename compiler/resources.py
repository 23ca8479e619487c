"""Where microtile's non-Python files live: the board files, the C kernels and the Renode scripts.

In a checkout (and an editable install) they are the top-level folders `boards/`, `runtime_c/`
and `renode/` beside `compiler/`. A wheel ships the same folders as package data under
`compiler/_data/` (pyproject.toml maps them there), so an installed microtile works from any
working directory.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
DATA_FOLDERS = ("boards", "runtime_c", "renode")


def data_dir(name: str) -> Path:
    """The folder `name` (one of DATA_FOLDERS): `compiler/_data/<name>` in a wheel install, else the
    checkout's `<repo>/<name>`. Raises ValueError for any other name."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; expected one of {', '.join(DATA_FOLDERS)}")
    packaged = _HERE / "_data" / name
    if packaged.is_dir():
        return packaged
    return _HERE.parent / name


def source_root() -> Path | None:
    """The checkout microtile runs from (the folder holding compiler/ and boards/), or None when it
    runs from an installed wheel."""
    root = _HERE.parent
    return root if (root / "boards").is_dir() and (root / "compiler").is_dir() else None
