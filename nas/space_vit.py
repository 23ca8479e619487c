"""MCUFormer-style ViT search space: a weight-sharing ViT supernet with elastic embedding dim,
depth, heads, MLP ratio, patch size, resolution and low-rank factorised linears.

Space (Liang et al., "MCUFormer: Deploying Vision Transformers on Microcontrollers with Limited
Memory", NeurIPS 2023: a low-rank supernet over rank ratio and patch size under a memory
constraint; the elastic dims follow AutoFormer, Chen et al., ICCV 2021):

- embed dim d (first d channels of the widest), depth (first blocks), heads h (d % h == 0;
  head dim d / h), MLP ratio m (hidden = int(d * m), first channels), resolution r, patch p;
- **low rank**: every factorisable linear is stored as V [r_max, in] then U [out, r_max]; a subnet
  with rank ratio rho uses rank r = make_divisible(rho * min(in, out), 4): in the exported network
  (and the IR) it is two fully_connected ops, in -> r (no bias) -> out. rho = 1.0 means full rank:
  the export multiplies U V into one FC (exact in float). `lowrank` names the linears that are
  factorised: "mlp" (fc1, fc2: default), "all" (also q, k, v, proj).
  microtile's token planner (compiler/schedule/token.py) runs a factorised projection inside its
  attention and MLP stages as two FC calls per row group through r-wide workspace rows, so
  low-rank blocks keep the token plan's memory (tests/test_token_lowrank.py).
- patch size: the patch-embedding kernel is stored at the largest patch and resized (bilinear,
  area-preserving scale (P/p)^2) for smaller ones, as FlexiViT does (Beyer et al., CVPR 2023);
  the position embedding is stored for the finest grid and resized (bicubic) to each subnet's grid.

`export_vit(supernet, arch)` returns a `compiler.models.vit.ViT` with the sliced weights, its
factorised linears replaced by `nn.Sequential(Linear(in, r, bias=False), Linear(r, out))`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from compiler.models.builder import make_divisible
from compiler.models.vit import ViT, ViTConfig

Arch = dict[str, Any]
MLP_LINEARS = ("fc1", "fc2")
ATTN_LINEARS = ("q", "k", "v", "proj")


@dataclass(frozen=True)
class VitSpace:
    in_chans: int = 1
    num_classes: int = 4
    embed_dims: tuple[int, ...] = (32, 48, 64)
    depths: tuple[int, ...] = (1, 2, 3)
    heads: tuple[int, ...] = (1, 2, 4)
    mlp_ratios: tuple[float, ...] = (1.0, 2.0, 3.0)
    patches: tuple[int, ...] = (8, 16)
    resolutions: tuple[int, ...] = (64, 96, 128)
    rank_ratios: tuple[float, ...] = (0.25, 0.5, 1.0)
    lowrank: str = "mlp"  # "mlp" | "all"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> VitSpace:
        d = dict(d)
        for k in ("embed_dims", "depths", "heads", "mlp_ratios", "patches", "resolutions", "rank_ratios"):
            d[k] = tuple(d[k])
        return VitSpace(**d)

    @property
    def factorised(self) -> tuple[str, ...]:
        return MLP_LINEARS + (ATTN_LINEARS if self.lowrank == "all" else ())

    def largest(self) -> Arch:
        return self.normalize({"res": max(self.resolutions), "patch": min(self.patches), "embed": max(self.embed_dims),
                               "depth": max(self.depths), "heads": max(self.heads),
                               "mlp_ratio": max(self.mlp_ratios), "rank": max(self.rank_ratios)})  # fmt: skip

    def smallest(self) -> Arch:
        return self.normalize({"res": min(self.resolutions), "patch": max(self.patches), "embed": min(self.embed_dims),
                               "depth": min(self.depths), "heads": min(self.heads),
                               "mlp_ratio": min(self.mlp_ratios), "rank": min(self.rank_ratios)})  # fmt: skip

    def sample(self, rng: random.Random) -> Arch:
        while True:
            a = {"res": rng.choice(self.resolutions), "patch": rng.choice(self.patches),
                 "embed": rng.choice(self.embed_dims), "depth": rng.choice(self.depths),
                 "heads": rng.choice(self.heads), "mlp_ratio": rng.choice(self.mlp_ratios),
                 "rank": rng.choice(self.rank_ratios)}  # fmt: skip
            try:
                return self.normalize(a)
            except ValueError:
                continue

    def normalize(self, arch: Arch) -> Arch:
        """Raises ValueError when resolution % patch != 0 or embed % heads != 0."""
        a = dict(arch)
        if a["res"] % a["patch"]:
            raise ValueError(f"resolution {a['res']} is not a multiple of patch {a['patch']}")
        if a["embed"] % a["heads"]:
            raise ValueError(f"embed {a['embed']} is not a multiple of heads {a['heads']}")
        return a

    def describe(self, a: Arch) -> str:
        return (f"r{a['res']} p{a['patch']} d{a['embed']} L{a['depth']} h{a['heads']} "
                f"mlp{a['mlp_ratio']} rank{a['rank']}")  # fmt: skip

    def rank(self, ratio: float, n_in: int, n_out: int) -> int:
        return min(min(n_in, n_out), make_divisible(ratio * min(n_in, n_out), 4))


class LowRankLinear(nn.Module):
    """y = U (V x) + b with elastic in/out/rank: V [r_max, in_max], U [out_max, r_max]."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        r = min(n_in, n_out)
        self.v = nn.Parameter(torch.empty(r, n_in))
        self.u = nn.Parameter(torch.empty(n_out, r))
        self.bias = nn.Parameter(torch.zeros(n_out))
        nn.init.orthogonal_(self.v)
        nn.init.normal_(self.u, std=(1.0 / n_in) ** 0.5)

    def parts(self, n_in: int, n_out: int, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.v[:r, :n_in], self.u[:n_out, :r], self.bias[:n_out]

    def forward(self, x: torch.Tensor, n_out: int, r: int) -> torch.Tensor:
        v, u, b = self.parts(x.shape[-1], n_out, r)
        return F.linear(F.linear(x, v), u, b)


class DynLinear(nn.Linear):
    def forward(self, x: torch.Tensor, n_out: int, r: int = 0) -> torch.Tensor:  # type: ignore[override]
        return F.linear(x, self.weight[:n_out, : x.shape[-1]], self.bias[:n_out])


def _ln(ln: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1]
    return F.layer_norm(x, (d,), ln.weight[:d], ln.bias[:d], ln.eps)


class VitSupernet(nn.Module):
    """All subnets of a VitSpace: `forward(x, arch)`, x [B, C, r, r] -> logits [B, classes]."""

    def __init__(self, space: VitSpace) -> None:
        super().__init__()
        self.space = space
        D, P = max(space.embed_dims), max(space.patches)
        H = int(D * max(space.mlp_ratios))
        self.grid = max(space.resolutions) // min(space.patches)
        self.patch_w = nn.Parameter(torch.empty(D, space.in_chans, P, P))
        nn.init.kaiming_normal_(self.patch_w, mode="fan_in")
        self.patch_b = nn.Parameter(torch.zeros(D))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.randn(1, self.grid * self.grid + 1, D) * 0.02)

        def lin(name: str, n_in: int, n_out: int) -> nn.Module:
            return LowRankLinear(n_in, n_out) if name in space.factorised else DynLinear(n_in, n_out)

        self.blocks = nn.ModuleList()
        for _ in range(max(space.depths)):
            b = nn.Module()
            b.norm1, b.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
            for n in ATTN_LINEARS:
                setattr(b, n, lin(n, D, D))
            b.fc1, b.fc2 = lin("fc1", D, H), lin("fc2", H, D)
            self.blocks.append(b)
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, space.num_classes)

    def patch_weight(self, d: int, p: int) -> torch.Tensor:
        w = self.patch_w[:d]
        P = w.shape[-1]
        if p == P:
            return w
        return F.interpolate(w, size=(p, p), mode="bilinear", align_corners=False, antialias=True) * (P / p) ** 2

    def pos(self, d: int, grid: int) -> torch.Tensor:
        cls, rest = self.pos_embed[:, :1, :d], self.pos_embed[:, 1:, :d]
        if grid != self.grid:
            rest = rest.reshape(1, self.grid, self.grid, d).permute(0, 3, 1, 2)
            rest = F.interpolate(rest, size=(grid, grid), mode="bicubic", align_corners=False)
            rest = rest.permute(0, 2, 3, 1).reshape(1, grid * grid, d)
        return torch.cat([cls, rest], 1)

    def forward(self, x: torch.Tensor, a: Arch) -> torch.Tensor:
        d, p, heads, sp = a["embed"], a["patch"], a["heads"], self.space
        hidden = int(d * a["mlp_ratio"])
        x = F.conv2d(x, self.patch_weight(d, p), self.patch_b[:d], stride=p).flatten(2).transpose(1, 2)
        B, N, _ = x.shape
        x = torch.cat([self.cls_token[:, :, :d].expand(B, -1, -1), x], 1) + self.pos(d, a["res"] // p)
        r_dd, r_dh = sp.rank(a["rank"], d, d), sp.rank(a["rank"], d, hidden)
        hd = d // heads
        for blk in self.blocks[: a["depth"]]:
            h = _ln(blk.norm1, x)

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.reshape(B, N + 1, heads, hd).transpose(1, 2)

            q, k, v = (split(getattr(blk, n)(h, d, r_dd)) for n in ("q", "k", "v"))
            att = torch.softmax((q @ k.transpose(-2, -1)) * hd**-0.5, dim=-1)
            x = x + blk.proj((att @ v).transpose(1, 2).reshape(B, N + 1, d), d, r_dd)
            h = _ln(blk.norm2, x)
            x = x + blk.fc2(F.gelu(blk.fc1(h, hidden, r_dh)), d, r_dh)
        x = _ln(self.norm, x)[:, 0]
        return F.linear(x, self.head.weight[:, :d], self.head.bias)


def _export_linear(m: nn.Module, n_in: int, n_out: int, r: int, full: bool) -> nn.Module:
    if isinstance(m, LowRankLinear):
        v, u, b = m.parts(n_in, n_out, r)
        if full:
            lin = nn.Linear(n_in, n_out)
            lin.weight.data.copy_(u @ v)
            lin.bias.data.copy_(b)
            return lin
        first, second = nn.Linear(n_in, r, bias=False), nn.Linear(r, n_out)
        first.weight.data.copy_(v)
        second.weight.data.copy_(u)
        second.bias.data.copy_(b)
        return nn.Sequential(first, second)
    lin = nn.Linear(n_in, n_out)
    lin.weight.data.copy_(m.weight[:n_out, :n_in])
    lin.bias.data.copy_(m.bias[:n_out])
    return lin


def _copy_ln(dst: nn.LayerNorm, src: nn.LayerNorm, d: int) -> None:
    dst.weight.data.copy_(src.weight[:d])
    dst.bias.data.copy_(src.bias[:d])


@torch.no_grad()
def export_vit(net: VitSupernet, a: Arch) -> ViT:
    """The subnet `a` as a `compiler.models.vit.ViT` (eval mode) with sliced / resized weights."""
    sp, d = net.space, a["embed"]
    cfg = ViTConfig(img_size=a["res"], patch=a["patch"], in_chans=sp.in_chans, embed_dim=d, depth=a["depth"],
                    heads=a["heads"], mlp_ratio=a["mlp_ratio"], num_classes=sp.num_classes)  # fmt: skip
    m = ViT(cfg)
    hidden = int(d * a["mlp_ratio"])
    full = a["rank"] >= 1.0
    m.patch_embed.weight.data.copy_(net.patch_weight(d, a["patch"]))
    m.patch_embed.bias.data.copy_(net.patch_b[:d])
    m.cls_token.data.copy_(net.cls_token[:, :, :d])
    m.pos_embed.data.copy_(net.pos(d, a["res"] // a["patch"]))
    for blk, src in zip(m.blocks, net.blocks[: a["depth"]], strict=True):
        _copy_ln(blk.norm1, src.norm1, d)
        _copy_ln(blk.norm2, src.norm2, d)
        for n in ATTN_LINEARS:
            setattr(blk.attn, n, _export_linear(getattr(src, n), d, d, sp.rank(a["rank"], d, d), full))
        blk.fc1 = _export_linear(src.fc1, d, hidden, sp.rank(a["rank"], d, hidden), full)
        blk.fc2 = _export_linear(src.fc2, hidden, d, sp.rank(a["rank"], d, hidden), full)
    _copy_ln(m.norm, net.norm, d)
    m.head.weight.data.copy_(net.head.weight[:, :d])
    m.head.bias.data.copy_(net.head.bias)
    m.arch = dict(a)  # type: ignore[assignment]
    return m.eval()
