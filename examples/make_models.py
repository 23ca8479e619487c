"""Regenerate the demo models shipped in examples/models/ (deterministic: same bytes every run).

    python examples/make_models.py            # rewrite examples/models/*.tflite
    python examples/make_models.py --check    # exit 1 if a shipped file differs from a fresh build
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.core.ir import Graph, graph_macs  # noqa: E402
from compiler.frontend.tflite_writer import write_tflite  # noqa: E402
from compiler.models.builder import tiny_cnn  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parent / "models"

# file name -> factory of the IR graph
MODELS: dict[str, Callable[[], Graph]] = {
    "tiny_cnn.tflite": tiny_cnn,
}


def model_bytes(name: str) -> bytes:
    return write_tflite(MODELS[name]())


def summary(g: Graph) -> str:
    weights = sum(t.nbytes for t in g.constants())
    largest = max(g.activations(), key=lambda t: t.nbytes)
    return (
        f"{len(g.ops)} ops, {graph_macs(g):,} MACs, {weights:,} weight bytes, "
        f"largest activation {largest.name} {largest.shape} = {largest.nbytes:,} bytes"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=MODELS_DIR, help="output folder (default: examples/models)")
    ap.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    args = ap.parse_args(argv)
    status = 0
    for name, factory in MODELS.items():
        g = factory()
        data = write_tflite(g)
        path = args.out / name
        if args.check:
            same = path.is_file() and path.read_bytes() == data
            print(f"{path}: {'up to date' if same else 'DIFFERS from a fresh build'}")
            status |= 0 if same else 1
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path} ({len(data):,} bytes): {summary(g)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
