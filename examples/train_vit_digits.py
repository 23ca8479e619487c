"""Train a tiny ViT on scikit-learn's digits and export it for microtile (float ONNX + calibration).

    python examples/train_vit_digits.py --out build/vit_digits
    microtile run build/vit_digits/vit_digits.onnx --calib build/vit_digits/calib.npy \
        --input build/vit_digits/test_x.npy --board stm32f746g-disco --out build/vit_fw

The 8x8 digits (values 0..16) are upsampled to 32x32 (each pixel a 4x4 block), scaled to [-1, 1],
one channel, NCHW. Deterministic: fixed seeds, one thread, deterministic torch algorithms; about
half a minute on one CPU core. Writes `vit_digits.onnx` (opset 17, float), `calib.npy` (128
training images), `test_x.npy` / `test_y.npy` (the held-out 360) and `train.json` (accuracy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def digits_dataset(img_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y): float32 NCHW in [-1, 1], int64 labels; a fixed 80/20 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32) / 16.0 * 2.0 - 1.0  # [N, 8, 8]
    f = img_size // 8
    x = np.kron(x, np.ones((1, f, f), np.float32))[:, None]  # nearest upsampling -> [N, 1, S, S]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n_test = 360
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def train(epochs: int = 30, img_size: int = 32, seed: int = 0, log=print):
    import torch

    from compiler.models.vit import ViT, ViTConfig

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tx, ty, vx, vy = digits_dataset(img_size)
    cfg = ViTConfig(img_size=img_size, patch=8, in_chans=1, embed_dim=32, depth=2, heads=2, mlp_ratio=2.0)
    model = ViT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((len(tx) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(tx), torch.from_numpy(ty)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        log(f"epoch {ep + 1:2d}/{epochs}  loss {total / len(xt):.4f}")
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(vx)).argmax(1).numpy() == vy).mean())
    return model, cfg, (tx, ty, vx, vy), acc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/vit_digits"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--img-size", type=int, default=32)
    args = ap.parse_args(argv)
    import torch

    from compiler.frontend.torch import export_onnx

    t0 = time.time()
    model, cfg, (tx, _, vx, vy), acc = train(args.epochs, args.img_size)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "vit_digits.onnx"
    export_onnx(model, torch.from_numpy(tx[:1]), onnx_path)
    np.save(args.out / "calib.npy", tx[:128])
    np.save(args.out / "test_x.npy", vx)
    np.save(args.out / "test_y.npy", vy)
    info = {"config": cfg.__dict__, "test_accuracy": acc, "train_seconds": round(time.time() - t0, 1)}
    (args.out / "train.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"test accuracy {acc:.3f}; wrote {onnx_path}, calib.npy, test_x.npy, test_y.npy ({info['train_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
