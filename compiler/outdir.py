"""The output folder (`--out`): what microtile may write, overwrite and delete there.

A folder microtile wrote holds `.microtile-manifest.json`:
`{"generator": "microtile", "complete": bool, "files": [relative paths]}`. The rules:

- `--out` naming an existing file, the microtile source tree (its repository root or a folder
  in it other than the ignored `out/` and `build/`), or a folder above that tree: refused.
- An existing non-empty folder without the manifest is refused, unless `force`: then the
  generated files are added beside the foreign ones; a foreign file is never overwritten or
  deleted (a name clash is refused, `build/` included since `make` writes there).
- Only files listed in the folder's manifest are ever overwritten or deleted: files of the
  previous run that this run did not write again (another `--prefix`) are deleted at the end.
- Until `finish()` the manifest says `"complete": false` and `.incomplete` exists; the old
  `report.json` is removed first and the new one is written only by `finish()`, so a failed or
  interrupted run never leaves a report that looks final. `fail()` removes the folder when
  microtile created it in this run, else leaves it marked incomplete.
- `sources.mk` lists the C sources written in this run; the generated Makefile builds those
  and nothing else (a stray `myapp.c` or a stale `model.c` is not compiled).

Raises `OutputError` (CLI: one line, exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from compiler.errors import MicrotileError

MANIFEST = ".microtile-manifest.json"
INCOMPLETE = ".incomplete"
SOURCES = "sources.mk"
REPORT = "report.json"
ROOT = Path(__file__).resolve().parent.parent  # the microtile checkout (or site-packages when installed)
OUTPUT_FOLDERS = ("out", "build")  # folders of the checkout that hold generated output (.gitignore)


class OutputError(MicrotileError):
    """The --out folder cannot be used safely."""


def read_manifest(path: Path) -> dict | None:
    """The manifest of folder `path`, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != "microtile" or not isinstance(data.get("files"), list):
        return None
    # only plain relative paths inside the folder: a hand-edited manifest never reaches outside it
    data["files"] = [f for f in data["files"] if isinstance(f, str) and _inside(f)]
    return data


def _inside(rel: str) -> bool:
    p = Path(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


def check_out_path(out: Path) -> None:
    """Refuse a path that names a file, lies in the microtile source tree or above it."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: is an existing file, not a folder")
    resolved = out.resolve()
    for parent in resolved.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"--out {out}: {parent} is a file, not a folder")
    if resolved == ROOT:
        raise OutputError(f"--out {out}: is the microtile source tree {ROOT}; choose another folder")
    if resolved in ROOT.parents:
        raise OutputError(f"--out {out}: holds the microtile source tree {ROOT}; choose another folder")
    if ROOT in resolved.parents:
        first = resolved.relative_to(ROOT).parts[0]
        if first not in OUTPUT_FOLDERS:
            raise OutputError(
                f"--out {out}: inside the microtile source tree ({ROOT / first}); use a folder outside it "
                f"or under {ROOT / 'out'}"
            )


class OutDir:
    """One run's writes into `path` (see the module docstring for the rules)."""

    def __init__(self, path: str | Path, force: bool = False) -> None:
        self.path = Path(path)
        check_out_path(self.path)
        self.created = not self.path.exists()
        manifest = None if self.created else read_manifest(self.path)
        self.previous: set[str] = set(manifest["files"]) if manifest else set()
        self.foreign: set[str] = set()
        self.was_foreign = not self.created and manifest is None  # an existing folder microtile did not make
        self.written: list[str] = []
        if not self.created and manifest is None:
            existing = sorted(p for p in self.path.iterdir())
            if existing and not force:
                raise OutputError(
                    f"--out {self.path}: folder is not empty and was not made by microtile (no {MANIFEST}); "
                    "choose an empty or new folder, or pass --force to add the project beside its files"
                )
            self.foreign = {str(p.relative_to(self.path)) for p in self.path.rglob("*")}
            if "build" in self.foreign:
                raise OutputError(f"--out {self.path}: holds a build/ folder of its own, where make would write")

    # -- writing ------------------------------------------------------------------------
    def begin(self) -> None:
        """Create the folder, mark it incomplete and remove the previous report."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # no permission, a read-only or pseudo file system, ...
            raise OutputError(f"--out {self.path}: cannot create the folder ({e.strerror or e})") from None
        (self.path / INCOMPLETE).write_text("microtile is writing or did not finish this project\n")
        if REPORT in self.previous and (self.path / REPORT).is_file():
            (self.path / REPORT).unlink()
        self._write_manifest(complete=False)

    def _check(self, rel: str) -> Path:
        if rel in self.foreign:
            raise OutputError(f"--out {self.path}: {rel} exists and is not microtile's; not overwriting it")
        dest = self.path / rel
        if not _inside(rel) or self.path.resolve() not in dest.resolve().parents:
            raise OutputError(f"--out {self.path}: {rel} would be written outside the folder (a link?)")
        if dest.exists() and rel not in self.previous and rel not in self.written:
            raise OutputError(f"--out {self.path}: {rel} exists and is not microtile's; not overwriting it")
        return dest

    def write(self, rel: str, data: str | bytes) -> Path:
        """Write `data` to `path/rel` (a generated file: listed in the manifest)."""
        dest = self._check(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            dest.write_bytes(data)
        else:
            dest.write_text(data)
        self._record(rel)
        return dest

    def copy(self, src: Path, rel: str) -> Path:
        dest = self._check(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        self._record(rel)
        return dest

    def _record(self, rel: str) -> None:
        if rel not in self.written:
            self.written.append(rel)
            self._write_manifest(complete=False)

    def write_sources(self) -> None:
        """`sources.mk`: the C files written in this run, the only ones the Makefile compiles."""
        srcs = sorted(r for r in self.written if r.endswith(".c"))
        self.write(SOURCES, _sources_text(srcs))

    def _write_manifest(self, complete: bool) -> None:
        files = sorted(set(self.written) | (set() if complete else self.previous))
        data = {"generator": "microtile", "complete": complete, "files": files}
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.path / MANIFEST)

    # -- ending -------------------------------------------------------------------------
    def finish(self, report_text: str) -> None:
        """Delete the previous run's files this run did not write, write report.json, mark complete."""
        for rel in sorted(self.previous - set(self.written) - {REPORT}):
            p = self.path / rel
            if p.is_file() and not p.is_symlink() and self.path.resolve() in p.resolve().parents:
                p.unlink()
                _prune_empty(p.parent, self.path)
        self.write(REPORT, report_text)
        self._write_manifest(complete=True)
        (self.path / INCOMPLETE).unlink(missing_ok=True)

    def fail(self) -> None:
        """After an error: remove the folder when this run created it; in a folder that was not
        microtile's (`--force` beside the user's files) remove what this run wrote, so the folder
        is as it was; else leave it marked incomplete."""
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        if self.was_foreign:
            for rel in self.written:
                f = self.path / rel
                if rel not in self.foreign and f.is_file() and not f.is_symlink():
                    f.unlink()
                    _prune_empty(f.parent, self.path)
            for name in (MANIFEST, MANIFEST + ".tmp", INCOMPLETE):
                if name not in self.foreign:
                    (self.path / name).unlink(missing_ok=True)


def _prune_empty(folder: Path, top: Path) -> None:
    while folder != top and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _sources_text(srcs: list[str]) -> str:
    return (
        "# The C sources microtile generated (from its manifest); the Makefile builds these only.\n"
        "MT_SOURCES := " + " ".join(srcs) + "\n"
    )


def adopt(path: str | Path, rel: str) -> None:
    """Add `path/rel`, just written by a later step (e.g. Renode's `mt_inputs.c`), to the
    manifest of a microtile folder, and to `sources.mk` when it is a C file."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is None:
        raise OutputError(f"{path}: not a microtile project (no {MANIFEST})")
    files = set(manifest["files"]) | {rel}
    manifest["files"] = sorted(files)
    if rel.endswith(".c") and (path / SOURCES).exists():
        text = (path / SOURCES).read_text()
        line = next((ln for ln in text.splitlines() if ln.startswith("MT_SOURCES :=")), "MT_SOURCES :=")
        srcs = sorted(set(line.split(":=", 1)[1].split()) | {rel})
        (path / SOURCES).write_text(_sources_text(srcs))
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, path / MANIFEST)
