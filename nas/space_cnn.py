"""MCUNet-style CNN search space: a MobileNetV2 supernet with elastic kernel, expansion, depth,
width and resolution, and MCUNetV2's receptive-field redistribution as a choice of the space.

Space (Lin et al., "MCUNet: Tiny Deep Learning on IoT Devices", NeurIPS 2020, TinyNAS; the
elastic dimensions and weight sharing of Cai et al., "Once-for-All", ICLR 2020):

- stem: 3x3 conv, stride 2, `make_divisible(stem * width)` channels, then one MBConv1 (expand 1, 3x3);
- stages (channels, max depth, stride) of MobileNetV2 inverted residual blocks (1x1 expand, KxK
  depthwise, 1x1 project, ReLU6, a residual add when stride 1 and shapes match); per block the
  kernel K in {3, 5, 7} and expand ratio E in {3, 4, 6}; per stage the depth (first d blocks);
- width multiplier w (every layer's channels = make_divisible(base * w, 8)); input resolution r;
- head: global average pool + linear classifier.
- **redistribution** (Lin et al., "MCUNetV2: Memory-Efficient Patch-based Inference", NeurIPS 2021,
  Sec. 3.2): `redistribute=True` gives the first `patch_stages` stages (the high-resolution part
  a patch plan runs patch by patch) kernel 3 and depth 1, and allows one extra block in every
  later stage (depth up to max + 1). `redistribute=False` keeps all stages at depth <= max.

Weight sharing: a kernel of K < 7 is the centre K x K of the 7x7 kernel; a layer of c channels
uses the first c of the widest layer's; a stage of depth d runs its first d blocks. BatchNorm
statistics are re-estimated per subnet before it is scored (`recalibrate_bn`), as OFA does.

`Arch` is a plain dict (JSON-able): {"res", "width", "redistribute", "depths": [per stage],
"kernels": [per block slot], "expands": [per block slot]}. `export_cnn(supernet, arch)` returns a
standalone `torch.nn.Sequential`-style module with the sliced weights (no supernet code needed to
run it), which exports to ONNX and the microtile IR as conv2d / depthwise_conv2d / add / mean / fc.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from compiler.models.builder import make_divisible

Arch = dict[str, Any]
KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)


@dataclass(frozen=True)
class CnnSpace:
    """The search space. stages: (base channels, max depth, stride) per stage."""

    in_chans: int = 1
    num_classes: int = 4
    stem: int = 16
    first: int = 8  # MBConv1 block after the stem
    stages: tuple[tuple[int, int, int], ...] = ((16, 2, 2), (24, 3, 2), (40, 3, 2), (48, 2, 1), (96, 3, 2))
    kernels: tuple[int, ...] = KERNELS
    expands: tuple[int, ...] = EXPANDS
    widths: tuple[float, ...] = (0.35, 0.5, 0.75, 1.0)
    resolutions: tuple[int, ...] = (96, 112, 128, 144, 160)
    patch_stages: int = 2  # stages run patch by patch under MCUNetV2's redistribution
    redistribute: tuple[bool, ...] = (False, True)
    head_dropout: float = 0.0

    @property
    def slots(self) -> list[int]:
        """Block slots per stage in the supernet (max depth, +1 for redistribution's extra block)."""
        return [d + (1 if i >= self.patch_stages and True in self.redistribute else 0) for i, (_, d, _) in
                enumerate(self.stages)]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> CnnSpace:
        d = dict(d)
        d["stages"] = tuple(tuple(s) for s in d["stages"])
        for k in ("kernels", "expands", "widths", "resolutions", "redistribute"):
            d[k] = tuple(d[k])
        return CnnSpace(**d)

    # -- architectures ---------------------------------------------------------------
    def depth_choices(self, stage: int, redistribute: bool) -> list[int]:
        d = self.stages[stage][1]
        if redistribute and stage < self.patch_stages:
            return [1]
        if redistribute:
            return list(range(1, d + 2))
        return list(range(1, d + 1))

    def largest(self) -> Arch:
        red = True in self.redistribute and False not in self.redistribute
        return self._fill(max(self.resolutions), max(self.widths), red,
                          [max(self.depth_choices(i, red)) for i in range(len(self.stages))],
                          max(self.kernels), max(self.expands))  # fmt: skip

    def smallest(self) -> Arch:
        red = True in self.redistribute
        return self._fill(min(self.resolutions), min(self.widths), red,
                          [min(self.depth_choices(i, red)) for i in range(len(self.stages))],
                          min(self.kernels), min(self.expands))  # fmt: skip

    def _fill(self, res: int, width: float, red: bool, depths: list[int], k: int, e: int) -> Arch:
        n = sum(self.slots)
        return self.normalize({"res": res, "width": width, "redistribute": red, "depths": depths,
                               "kernels": [k] * n, "expands": [e] * n})  # fmt: skip

    def sample(self, rng: random.Random) -> Arch:
        red = rng.choice(self.redistribute)
        n = sum(self.slots)
        return self.normalize({
            "res": rng.choice(self.resolutions), "width": rng.choice(self.widths), "redistribute": red,
            "depths": [rng.choice(self.depth_choices(i, red)) for i in range(len(self.stages))],
            "kernels": [rng.choice(self.kernels) for _ in range(n)],
            "expands": [rng.choice(self.expands) for _ in range(n)],
        })  # fmt: skip

    def normalize(self, arch: Arch) -> Arch:
        """The canonical form: redistribution's constraints applied, unused slots set to the
        smallest choice (so equal networks compare equal). Raises ValueError on an invalid arch."""
        a = {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in arch.items()}
        if a["res"] not in self.resolutions or a["width"] not in self.widths:
            raise ValueError(f"resolution {a['res']} / width {a['width']} not in the space")
        red = bool(a["redistribute"])
        a["redistribute"] = red
        slot = 0
        for i, n in enumerate(self.slots):
            if a["depths"][i] not in self.depth_choices(i, red):
                raise ValueError(f"stage {i} depth {a['depths'][i]} not allowed (redistribute={red})")
            for j in range(n):
                used = j < a["depths"][i]
                if not used:
                    a["kernels"][slot], a["expands"][slot] = min(self.kernels), min(self.expands)
                elif red and i < self.patch_stages:
                    a["kernels"][slot] = min(self.kernels)
                slot += 1
        return a

    def describe(self, arch: Arch) -> str:
        ks, es, out, slot = arch["kernels"], arch["expands"], [], 0
        for i, n in enumerate(self.slots):
            blocks = [f"k{ks[slot + j]}e{es[slot + j]}" for j in range(arch["depths"][i])]
            out.append("-".join(blocks))
            slot += n
        red = " redist" if arch["redistribute"] else ""
        return f"r{arch['res']} w{arch['width']}{red} | " + " | ".join(out)


# -- dynamic layers --------------------------------------------------------------------------


class DynConv(nn.Module):
    """Conv with elastic in/out channels and (centre-cropped) kernel; depthwise when dw=True."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, dw: bool = False) -> None:
        super().__init__()
        self.stride, self.dw, self.k = stride, dw, k
        self.weight = nn.Parameter(torch.empty(cout, 1 if dw else cin, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def sliced(self, cin: int, cout: int, k: int) -> torch.Tensor:
        o = (self.k - k) // 2
        w = self.weight[:cout, : (1 if self.dw else cin)]
        return w[:, :, o : o + k, o : o + k] if k != self.k else w

    def forward(self, x: torch.Tensor, cout: int, k: int | None = None) -> torch.Tensor:
        k = k or self.k
        cin = x.shape[1]
        w = self.sliced(cin, cin if self.dw else cout, k)
        return F.conv2d(x, w, None, self.stride, k // 2, 1, cin if self.dw else 1)


class DynBN(nn.BatchNorm2d):
    """BatchNorm over the first c channels of the widest layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        c = x.shape[1]
        assert self.running_mean is not None and self.running_var is not None
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
                            self.training, self.momentum or 0.0, self.eps)  # fmt: skip


class DynBlock(nn.Module):
    """MobileNetV2 inverted residual block at its largest: expand 1x1 -> depthwise KxK -> project 1x1."""

    def __init__(self, cin: int, cout: int, stride: int, kmax: int, emax: int) -> None:
        super().__init__()
        hidden = make_divisible(cin * emax)
        self.stride, self.emax = stride, emax
        self.expand, self.bn1 = DynConv(cin, hidden, 1), DynBN(hidden)
        self.dw, self.bn2 = DynConv(hidden, hidden, kmax, stride, dw=True), DynBN(hidden)
        self.project, self.bn3 = DynConv(hidden, cout, 1), DynBN(cout)

    def forward(self, x: torch.Tensor, cout: int, k: int, e: int) -> torch.Tensor:
        hidden = make_divisible(x.shape[1] * e)
        h = F.relu6(self.bn1(self.expand(x, hidden)))
        h = F.relu6(self.bn2(self.dw(h, hidden, k)))
        y = self.bn3(self.project(h, cout))
        return x + y if self.stride == 1 and x.shape[1] == cout else y


class CnnSupernet(nn.Module):
    """All subnets of a CnnSpace in one module: `forward(x, arch)` runs the subnet `arch` (x is
    resized by the caller to arch["res"]). Shapes: x [B, in_chans, r, r] -> logits [B, classes]."""

    def __init__(self, space: CnnSpace) -> None:
        super().__init__()
        self.space = space
        wmax, kmax, emax = max(space.widths), max(space.kernels), max(space.expands)
        stem = make_divisible(space.stem * wmax)
        first = make_divisible(space.first * wmax)
        self.stem, self.stem_bn = DynConv(space.in_chans, stem, 3, 2), DynBN(stem)
        self.first_dw, self.first_bn1 = DynConv(stem, stem, 3, 1, dw=True), DynBN(stem)
        self.first_pw, self.first_bn2 = DynConv(stem, first, 1), DynBN(first)
        blocks: list[DynBlock] = []
        cin = first
        for (c, _, s), n in zip(space.stages, space.slots, strict=True):
            cout = make_divisible(c * wmax)
            for j in range(n):
                blocks.append(DynBlock(cin, cout, s if j == 0 else 1, kmax, emax))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(cin, space.num_classes)

    def channels(self, arch: Arch) -> dict[str, Any]:
        w = arch["width"]
        return {"stem": make_divisible(self.space.stem * w), "first": make_divisible(self.space.first * w),
                "stages": [make_divisible(c * w) for c, _, _ in self.space.stages]}  # fmt: skip

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        ch = self.channels(arch)
        x = F.relu6(self.stem_bn(self.stem(x, ch["stem"])))
        x = F.relu6(self.first_bn1(self.first_dw(x, ch["stem"])))
        x = self.first_bn2(self.first_pw(x, ch["first"]))
        slot = 0
        for i, n in enumerate(self.space.slots):
            for j in range(n):
                if j < arch["depths"][i]:
                    x = self.blocks[slot + j](x, ch["stages"][i], arch["kernels"][slot + j], arch["expands"][slot + j])
            slot += n
        x = x.mean((2, 3))
        return F.linear(x, self.head.weight[:, : x.shape[1]], self.head.bias)


# -- standalone export -------------------------------------------------------------------------


def _conv(w: torch.Tensor, stride: int, dw: bool) -> nn.Conv2d:
    cout, cin_g, k, _ = w.shape
    m = nn.Conv2d(cout if dw else cin_g, cout, k, stride, k // 2, groups=cout if dw else 1, bias=False)
    m.weight.data.copy_(w)
    return m


def _bn(bn: DynBN, c: int) -> nn.BatchNorm2d:
    m = nn.BatchNorm2d(c, eps=bn.eps)
    m.weight.data.copy_(bn.weight[:c])
    m.bias.data.copy_(bn.bias[:c])
    m.running_mean.copy_(bn.running_mean[:c])  # type: ignore[index]
    m.running_var.copy_(bn.running_var[:c])  # type: ignore[index]
    return m


class InvertedResidual(nn.Module):
    def __init__(self, layers: nn.Sequential, residual: bool) -> None:
        super().__init__()
        self.layers, self.residual = layers, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


class CnnSubnet(nn.Module):
    """A standalone MobileNetV2-style network: features (Sequential), global average pool, linear."""

    def __init__(self, features: nn.Sequential, head: nn.Linear, arch: Arch) -> None:
        super().__init__()
        self.features, self.head, self.arch = features, head, dict(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


@torch.no_grad()
def export_cnn(net: CnnSupernet, arch: Arch) -> CnnSubnet:
    """The subnet `arch` as a plain module with weights (and BN statistics) sliced from `net`."""
    ch = net.channels(arch)
    s, fs = ch["stem"], ch["first"]
    feats: list[nn.Module] = [
        _conv(net.stem.sliced(net.space.in_chans, s, 3), 2, False), _bn(net.stem_bn, s), nn.ReLU6(),
        _conv(net.first_dw.sliced(s, s, 3), 1, True), _bn(net.first_bn1, s), nn.ReLU6(),
        _conv(net.first_pw.sliced(s, fs, 1), 1, False), _bn(net.first_bn2, fs),
    ]  # fmt: skip
    cin, slot = fs, 0
    for i, n in enumerate(net.space.slots):
        cout = ch["stages"][i]
        for j in range(arch["depths"][i]):
            b = net.blocks[slot + j]
            k, e = arch["kernels"][slot + j], arch["expands"][slot + j]
            h = make_divisible(cin * e)
            layers = nn.Sequential(
                _conv(b.expand.sliced(cin, h, 1), 1, False), _bn(b.bn1, h), nn.ReLU6(),
                _conv(b.dw.sliced(h, h, k), b.stride, True), _bn(b.bn2, h), nn.ReLU6(),
                _conv(b.project.sliced(h, cout, 1), 1, False), _bn(b.bn3, cout),
            )  # fmt: skip
            feats.append(InvertedResidual(layers, b.stride == 1 and cin == cout))
            cin = cout
        slot += n
    head = nn.Linear(cin, net.space.num_classes)
    head.weight.data.copy_(net.head.weight[:, :cin])
    head.bias.data.copy_(net.head.bias)
    return CnnSubnet(nn.Sequential(*feats), head, arch).eval()


def mobilenetv2_arch(space: CnnSpace, width: float, res: int) -> Arch:
    """The hand-scaled MobileNetV2 of the space (the baseline): every block k3 e6, full depth,
    no redistribution; only width and resolution vary."""
    depths = [d for _, d, _ in space.stages]
    n = sum(space.slots)
    return space.normalize({"res": res, "width": width, "redistribute": False, "depths": depths,
                            "kernels": [3] * n, "expands": [6] * n})  # fmt: skip
