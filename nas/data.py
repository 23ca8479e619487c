"""Data for the search: an image folder or an .npz, the procedural "small object" task, scikit-learn digits.

A dataset is `Split(x, y)`: x float32 NCHW in [-1, 1] at the largest resolution the search uses
(smaller resolutions are made by `resize`, bilinear, as the supernet sees them), y int64 labels.

- `load_dir(path)`: a folder with one subfolder per class (images: .png/.jpg/.bmp/.pgm, read with
  Pillow, converted to grayscale or RGB by `channels`), or an `.npz` with `x` ([N, H, W],
  [N, H, W, C] or [N, C, H, W], uint8 0..255 or float in [-1, 1]) and `y` ([N] ints).
- `small_object_task(n, size, classes, seed)`: a seeded scene of clutter (random line segments and
  filled discs) holding one small object whose *shape* is the class (plus, cross, ring, square
  outline, triangle, X...). The object spans 7-11 px of a 96-160 px scene, so at low resolution
  the shapes blur into one another: the resolution the search picks matters.
- `digits(size)`: scikit-learn's 8x8 digits, nearest-upsampled to `size` (the quick test).
- `split(data, val, test, seed)`: seeded train / val (search) / test (held out) split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.errors import MicrotileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")


@dataclass
class Split:
    x: np.ndarray  # float32 [N, C, H, W] in [-1, 1]
    y: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1 if len(self.y) else 0


def _to_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 127.5 - 1.0
    x = x.astype(np.float32)
    if x.min() < -1.0001 or x.max() > 1.0001:
        raise MicrotileError(f"float images must lie in [-1, 1], got [{x.min():.3g}, {x.max():.3g}]")
    return x


def _nchw(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4:
        return x
    raise MicrotileError(f"images must be [N, H, W], [N, H, W, C] or [N, C, H, W], got shape {x.shape}")


def load_dir(path: str | Path, channels: int | None = None) -> Split:
    """An image folder (one subfolder per class, sorted names = labels 0..K-1) or an .npz (x, y).

    Raises MicrotileError when the path is missing, empty, or the images differ in size."""
    path = Path(path)
    if not path.exists():
        raise MicrotileError(f"{path}: no such file or folder")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise MicrotileError(f"{path}: an .npz needs arrays 'x' and 'y', has {sorted(z.files)}")
            x, y = _nchw(np.asarray(z["x"])), np.asarray(z["y"]).astype(np.int64)
        if len(x) != len(y):
            raise MicrotileError(f"{path}: {len(x)} images but {len(y)} labels")
        return Split(_to_float(x), y)
    from PIL import Image

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if not classes:
        raise MicrotileError(f"{path}: expected one subfolder per class (or an .npz file)")
    mode = {1: "L", 3: "RGB", None: None}[channels]
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, folder in enumerate(classes):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(f) as im:
                if mode is None:
                    mode = "L" if im.mode in ("L", "1", "P") else "RGB"
                a = np.asarray(im.convert(mode), np.uint8)
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise MicrotileError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders")
    shapes = {a.shape for a in xs}
    if len(shapes) != 1:
        raise MicrotileError(f"{path}: images differ in size ({sorted(shapes)[:3]}...): resize them to one size")
    return Split(_to_float(np.stack(xs)), np.array(ys, np.int64))


def save_npz(data: Split, path: str | Path) -> Path:
    """Write `data` as an .npz that `load_dir` reads back (x uint8 NCHW, y int64)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.clip(np.round((data.x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    np.savez_compressed(path, x=x, y=data.y)
    return path


def split(data: Split, val: float = 0.15, test: float = 0.2, seed: int = 0) -> tuple[Split, Split, Split]:
    """(train, val, test): a seeded permutation; val scores candidates, test is held out."""
    order = np.random.default_rng(seed).permutation(len(data))
    n_test, n_val = int(round(len(data) * test)), int(round(len(data) * val))
    te, va, tr = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return (Split(data.x[tr], data.y[tr]), Split(data.x[va], data.y[va]), Split(data.x[te], data.y[te]))


# -- the procedural task -------------------------------------------------------------------

SHAPES = ("plus", "ring", "square", "triangle", "x", "bar")


def _shape_mask(kind: str, s: int) -> np.ndarray:
    """A binary s x s stamp of one object shape (stroke 1-2 px)."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) - (s - 1) / 2
    r = (s - 1) / 2
    t = max(1.0, s / 7)
    if kind == "plus":
        m = (np.abs(xx) <= t / 2 + 0.01) | (np.abs(yy) <= t / 2 + 0.01)
    elif kind == "ring":
        d = np.hypot(xx, yy)
        m = (d <= r) & (d >= r - t)
    elif kind == "square":
        m = (np.maximum(np.abs(xx), np.abs(yy)) >= r - t + 0.01) & (np.maximum(np.abs(xx), np.abs(yy)) <= r)
    elif kind == "triangle":
        m = (yy >= -r) & (np.abs(xx) <= (yy + r) / 2 + 0.01)
        m &= ~((yy < r - t) & (np.abs(xx) < (yy + r) / 2 - t))
    elif kind == "x":
        m = (np.abs(xx - yy) <= t * 0.75) | (np.abs(xx + yy) <= t * 0.75)
    elif kind == "bar":
        m = (np.abs(yy) <= t) & (np.abs(xx) <= r)
    else:
        raise ValueError(kind)
    return m


def small_object_task(
    n: int, size: int = 128, classes: int = 4, seed: int = 0, object_px: tuple[int, int] | None = None,
    clutter: float = 1.0,
) -> Split:  # fmt: skip
    """`n` seeded scenes, 1 x size x size, label = the shape of the one small object in the clutter.

    Scene: a smooth random background, 6-14 clutter strokes (random line segments) and 3-8 filled
    discs of random grey levels; the object (one of SHAPES[:classes], `object_px` = (lo, hi) px
    wide, hi exclusive; default 7-11 px at size 128, scaled with `size`) is stamped at a random
    place with a contrast of 0.5-1.0. `clutter` scales the number of strokes and discs (1.0: the
    counts above; 0.5: half as many). Deterministic in `seed`."""
    if not 2 <= classes <= len(SHAPES):
        raise MicrotileError(f"classes must be 2..{len(SHAPES)}, got {classes}")
    rng = np.random.default_rng(seed)
    x = np.empty((n, 1, size, size), np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    k = size / 128
    for i in range(n):
        gx, gy = rng.normal(size=2) * 0.3
        img = 0.15 * (gx * (xx / size - 0.5) + gy * (yy / size - 0.5)) + rng.uniform(-0.6, -0.2)
        for _ in range(int(round(rng.integers(6, 15) * clutter))):  # clutter strokes
            x0, y0 = rng.uniform(0, size, 2)
            ang, ln = rng.uniform(0, np.pi), rng.uniform(8, 30) * k
            tt = np.linspace(0, 1, int(ln * 2) + 2)
            px = np.clip((x0 + np.cos(ang) * ln * tt).astype(int), 0, size - 1)
            py = np.clip((y0 + np.sin(ang) * ln * tt).astype(int), 0, size - 1)
            img[py, px] = rng.uniform(-0.2, 0.6)
        for _ in range(int(round(rng.integers(3, 9) * clutter))):  # clutter discs
            cx, cy, rad = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, 6) * k
            img[(xx - cx) ** 2 + (yy - cy) ** 2 <= rad * rad] = rng.uniform(-0.3, 0.5)
        s = int(rng.integers(*object_px)) if object_px else max(5, int(round(rng.integers(7, 12) * k)))
        m = _shape_mask(SHAPES[y[i]], s)
        ox, oy = rng.integers(2, size - s - 2, 2)
        patch = img[oy : oy + s, ox : ox + s]
        patch[m] = rng.uniform(0.5, 1.0)
        img += rng.normal(0, 0.04, img.shape).astype(np.float32)
        x[i, 0] = np.clip(img, -1, 1)
    return Split(x, y)


def digits(size: int = 32) -> Split:
    """scikit-learn's 1,797 8x8 digits, nearest-upsampled to size x size (a multiple of 8), in [-1, 1]."""
    from sklearn.datasets import load_digits

    if size % 8:
        raise MicrotileError(f"digits size must be a multiple of 8, got {size}")
    d = load_digits()
    x = d.images.astype(np.float32) / 16.0 * 2.0 - 1.0
    f = size // 8
    x = np.kron(x, np.ones((1, f, f), np.float32))[:, None]
    return Split(x, d.target.astype(np.int64))


def resize(x, res: int):
    """Bilinear resize of a torch NCHW batch to res x res (identity when already that size)."""
    import torch.nn.functional as F

    if x.shape[-1] == res and x.shape[-2] == res:
        return x
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False, antialias=True)
