"""Supernet training with weight sharing, and the per-subnet steps around it.

Each step trains, on one batch, the largest subnet (cross-entropy on the labels), the smallest and
`n_random` random subnets (KL divergence to the largest subnet's softened predictions: in-place
distillation); gradients of all of them are summed before one optimizer step. This is the
sandwich rule with in-place distillation of Yu & Huang, "Universally Slimmable Networks and
Improved Training Techniques", ICCV 2019 (also BigNAS, Yu et al., ECCV 2020). Every subnet sees
the batch resized to its own resolution.

Distributed: launched by `torchrun` (WORLD_SIZE > 1 in the environment), training runs under
torch.distributed's DistributedDataParallel (gloo on CPU, nccl on GPUs) with a DistributedSampler;
every rank samples the same subnets (the sampler's RNG is seeded from the step number).
Checkpoints (`supernet.pt`: weights, optimizer, scheduler, epoch, history) are written by rank 0
after every epoch and resumed from when present.
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from compiler.errors import MicrotileError
from nas.data import Split, resize

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    epochs: int = 10
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    n_random: int = 2  # random subnets per step besides the largest and the smallest
    temperature: float = 1.0  # in-place distillation temperature
    seed: int = 0
    augment: bool = False  # random horizontal flips (only for flip-invariant tasks)


def build_supernet(kind: str, space: Any) -> nn.Module:
    from nas.space_cnn import CnnSupernet
    from nas.space_vit import VitSupernet

    return CnnSupernet(space) if kind == "cnn" else VitSupernet(space)


def export_subnet(kind: str, net: nn.Module, arch: dict[str, Any]) -> nn.Module:
    from nas.space_cnn import export_cnn
    from nas.space_vit import export_vit

    return export_cnn(net, arch) if kind == "cnn" else export_vit(net, arch)  # type: ignore[arg-type]


def _dist() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint this loop wrote (a dict; torch.load with pickles, so OUT must be microtile's, which
    `nas.loop.check_nas_out` ensures). MicrotileError when it cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated file, another format, a pickle of something else
        raise MicrotileError(f"{path}: cannot read this checkpoint ({type(e).__name__}); delete it to start that "
                             "stage over") from None  # fmt: skip
    if not isinstance(state, dict):
        raise MicrotileError(f"{path}: not a microtile nas checkpoint; delete it to start that stage over")
    return state


def train_supernet(
    kind: str,
    space: Any,
    train: Split,
    cfg: TrainConfig,
    ckpt: Path | None = None,
    log: Log = lambda _m: None,
    progress: bool = False,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train (or resume) the supernet of `space` on `train`. Returns (supernet, per-epoch history)."""
    from tqdm import tqdm

    rank, world = _dist()
    torch.manual_seed(cfg.seed)
    net = build_supernet(kind, space)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(train)
    per_rank = (n + world - 1) // world
    steps_per_epoch = max(1, (per_rank + cfg.batch - 1) // cfg.batch)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, total) / total)))
    history: list[dict[str, float]] = []
    start = 0
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        if state.get("space") not in (None, space.to_dict()):
            raise MicrotileError(f"{ckpt} holds a supernet of another search space: use another --out or delete it")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, start = state["history"], state["epoch"]
        log(f"[nas] resumed supernet from {ckpt} at epoch {start}/{cfg.epochs}")
    model: nn.Module = net
    if world > 1:
        model = nn.parallel.DistributedDataParallel(net, find_unused_parameters=True)
    xs, ys = torch.from_numpy(train.x), torch.from_numpy(train.y)
    largest, smallest = space.largest(), space.smallest()
    bar = tqdm(total=cfg.epochs, initial=start, desc="supernet epochs", disable=not progress or rank != 0)
    for epoch in range(start, cfg.epochs):
        net.train()
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        perm = torch.randperm(n, generator=g)[rank::world]
        losses = []
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch : (s + 1) * cfg.batch]
            if len(idx) == 0:
                continue
            xb, yb = xs[idx], ys[idx]
            if cfg.augment:
                xb = _augment(xb, g)
            rng = random.Random(cfg.seed * 7_919 + epoch * 100_003 + s)  # same subnets on every rank
            archs = [largest, smallest] + [space.sample(rng) for _ in range(cfg.n_random)]
            opt.zero_grad(set_to_none=True)
            soft = None
            for j, arch in enumerate(archs):
                logits = model(resize(xb, arch["res"]), arch)
                if j == 0:
                    loss = F.cross_entropy(logits, yb)
                    soft = F.softmax(logits.detach() / cfg.temperature, -1)
                else:
                    loss = F.kl_div(F.log_softmax(logits / cfg.temperature, -1), soft, reduction="batchmean")
                loss.backward()
                if j == 0:
                    losses.append(float(loss.detach()))
            opt.step()
            sched.step()
        history.append({"epoch": epoch + 1, "loss_largest": float(np.mean(losses)) if losses else float("nan")})
        if ckpt is not None and rank == 0:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt.with_suffix(".tmp")
            state = {
                "model": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "config": asdict(cfg),
                "space": space.to_dict(),
            }
            torch.save(state, tmp)
            tmp.replace(ckpt)
        log(f"[nas] supernet epoch {epoch + 1}/{cfg.epochs}: largest-subnet loss {history[-1]['loss_largest']:.4f}")
        bar.update(1)
    bar.close()
    net.eval()
    return net, history


@torch.no_grad()
def recalibrate_bn(module: nn.Module, x: np.ndarray, res: int, batch: int = 64) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics of `module` (in place) on images `x`
    ([N, C, H, W] float) resized to `res`: a cumulative average over the batches (OFA, Cai et al.
    2020, Sec. 3.3: shared BN statistics do not fit a subnet). Returns the module in eval mode."""
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        return module.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    xt = torch.from_numpy(x)
    for i in range(0, len(xt), batch):
        module(resize(xt[i : i + batch], res))
    for m in bns:
        m.momentum = 0.1
    return module.eval()


@torch.no_grad()
def accuracy(module: nn.Module, data: Split, res: int, batch: int = 128) -> float:
    """Top-1 accuracy of a standalone module on `data` resized to `res`."""
    module.eval()
    xt, hits = torch.from_numpy(data.x), 0
    for i in range(0, len(xt), batch):
        hits += int((module(resize(xt[i : i + batch], res)).argmax(1).numpy() == data.y[i : i + batch]).sum())
    return hits / max(len(data), 1)


def subnet(kind: str, net: nn.Module, arch: dict[str, Any], bn_data: np.ndarray) -> nn.Module:
    """The standalone subnet `arch` with weights inherited from `net` and BN statistics re-estimated."""
    m = export_subnet(kind, net, arch)
    return recalibrate_bn(m, bn_data, arch["res"]) if kind == "cnn" else m.eval()


def finetune(
    module: nn.Module,
    res: int,
    train: Split,
    epochs: int,
    lr: float = 5e-4,
    batch: int = 64,
    seed: int = 0,
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
    augment: bool = False,
    log: Log = lambda _m: None,
    progress: bool = False,
) -> nn.Module:
    """Fine-tune a standalone subnet (cross-entropy, plus KL to `teacher` when given) at `res`."""
    from tqdm import tqdm

    module = copy.deepcopy(module)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-4)
    xs, ys = torch.from_numpy(train.x), torch.from_numpy(train.y)
    steps = epochs * ((len(xs) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, steps) / max(steps, 1))))
    for ep in tqdm(range(epochs), desc="fine-tune epochs", disable=not progress):
        module.train()
        g = torch.Generator().manual_seed(seed * 1000 + ep)
        perm = torch.randperm(len(xs), generator=g)
        tot = 0.0
        for i in range(0, len(xs), batch):
            idx = perm[i : i + batch]
            xb = resize(_augment(xs[idx], g) if augment else xs[idx], res)
            out = module(xb)
            loss = F.cross_entropy(out, ys[idx])
            if teacher is not None:
                with torch.no_grad():
                    t = F.softmax(teacher(xb), -1)
                loss = loss + F.kl_div(F.log_softmax(out, -1), t, reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
        log(f"[nas] fine-tune epoch {ep + 1}/{epochs}: loss {tot / len(xs):.4f}")
    return module.eval()
