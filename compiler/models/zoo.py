"""Small PyTorch modules written the way PyTorch and timm write them, for the import tests and the
PTQ-time benchmark (plain torch, no torchvision/timm; random weights from the caller's seed).

Each `CASES` entry is `name -> (factory, example input shape)`, the input in the module's own layout
(NCHW images, NCL sequences for Conv1d, [B, T, D] or [T, B, D] tokens).

- `mobilenet_v2(width, num_classes)`: MobileNetV2 (Sandler et al. 2018, torchvision's layout).
- `mbv3_block()`: a MobileNetV3-small block: expand 1x1, depthwise 3x3 + Hardswish, squeeze-excite
  with Hardsigmoid (as torchvision's `SqueezeExcitation(scale_activation=Hardsigmoid)`), project.
- `fire()`: SqueezeNet 1.0's stem (MaxPool2d(ceil_mode=True)) and a Fire module (squeeze 1x1,
  expand 1x1 and 3x3, concatenated).
- `kws_conv1d()`: a Conv1d keyword-spotting net on MFCC frames [N, 40, 49] (Conv1d, BatchNorm1d,
  MaxPool1d, AvgPool1d, global average).
- `MHABlock(batch_first, causal)`: pre-norm `nn.MultiheadAttention` block with residual, optionally
  with a static causal `attn_mask`.
- `encoder(norm_first, activation)`: `nn.TransformerEncoderLayer` (eval; the fast path is off in export).
- `timm_attention(gather)`: timm's `Attention`: fused qkv Linear, reshape/permute, then `unbind(0)`
  or the older `qkv[0], qkv[1], qkv[2]` (Gather); scaled_dot_product_attention when `sdpa`.
- `ShuffleBlock`: grouped 1x1 convolutions around a depthwise 3x3 with ShuffleNet's channel shuffle.
- `mobilevit_block()`: MobileViT's block: local 3x3 + 1x1, unfold into 2x2 patches, a transformer
  layer over each patch position, fold back, 1x1, concat with the input, 3x3 fuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def _div8(v: float) -> int:
    return max(8, int(v + 4) // 8 * 8)


class _ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: Any = nn.ReLU6) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [_ConvBN(cin, hidden, 1)]
        layers += [_ConvBN(hidden, hidden, 3, stride, groups=hidden), _ConvBN(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.res else self.conv(x)


class MobileNetV2(nn.Module):
    # (expand t, channels c, repeats n, stride s) of Sandler et al. 2018, table 2
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))
    SETTINGS += ((6, 320, 1, 1),)

    def __init__(self, width: float = 0.35, num_classes: int = 10) -> None:
        super().__init__()
        cin = _div8(32 * width)
        layers: list[nn.Module] = [_ConvBN(3, cin, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            cout = _div8(c * width)
            for i in range(n):
                layers.append(_InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        last = 1280 if width <= 1.0 else _div8(1280 * width)
        layers.append(_ConvBN(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class MBV3Block(nn.Module):
    def __init__(self, cin: int = 16, hidden: int = 48, cout: int = 16) -> None:
        super().__init__()
        self.expand = _ConvBN(cin, hidden, 1, act=nn.Hardswish)
        self.dw = _ConvBN(hidden, hidden, 3, 1, groups=hidden, act=nn.Hardswish)
        self.fc1 = nn.Conv2d(hidden, _div8(hidden // 4), 1)
        self.fc2 = nn.Conv2d(_div8(hidden // 4), hidden, 1)
        self.project = _ConvBN(hidden, cout, 1, act=None)
        self.head = nn.Linear(cout, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dw(self.expand(x))
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(h, 1)))))
        y = x + self.project(h * s)
        return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1))


class Fire(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.squeeze = nn.Sequential(nn.Conv2d(16, 8, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.head = nn.Sequential(nn.Conv2d(32, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(self.stem(x))
        return self.head(self.pool(torch.cat([self.e1(s), self.e3(s)], 1)))


class KWSConv1d(nn.Module):
    def __init__(self, mfcc: int = 40, classes: int = 12) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(mfcc, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(32, 32, 3, padding=1, groups=32), nn.Conv1d(32, 48, 1), nn.BatchNorm1d(48), nn.ReLU(),
            nn.AvgPool1d(2), nn.Conv1d(48, 64, 3, stride=2), nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean(-1))


class MHABlock(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 4, batch_first: bool = True, causal: int = 0) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=batch_first)
        mask = torch.triu(torch.ones(causal, causal, dtype=torch.bool), 1) if causal else None
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x)
        return x + self.mha(h, h, h, attn_mask=self.mask, need_weights=False)[0]


class TimmAttention(nn.Module):
    """timm's `Attention` (vision_transformer.py) with a pre-norm residual around it."""

    def __init__(self, dim: int = 32, heads: int = 4, gather: bool = False, sdpa: bool = False) -> None:
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.scale = self.hd**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.gather, self.sdpa = gather, sdpa

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, n, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = (qkv[0], qkv[1], qkv[2]) if self.gather else qkv.unbind(0)
        if self.sdpa:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            a = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            o = a @ v
        return x + self.proj(o.transpose(1, 2).reshape(b, n, c))


class MobileViTBlock(nn.Module):
    def __init__(self, cin: int = 16, dim: int = 24, patch: int = 2) -> None:
        super().__init__()
        self.p = patch
        self.local = nn.Sequential(_ConvBN(cin, cin, 3, act=nn.SiLU), nn.Conv2d(cin, dim, 1, bias=False))
        self.layer = nn.TransformerEncoderLayer(dim, 2, dim * 2, dropout=0.0, batch_first=True, norm_first=True)
        self.proj = _ConvBN(dim, cin, 1, act=nn.SiLU)
        self.fuse = _ConvBN(2 * cin, cin, 3, act=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        y = self.local(x)
        d, p = y.shape[1], self.p
        # unfold: [B, D, H, W] -> [B * p * p, H/p * W/p, D] (MobileViT v1's reshapes)
        y = y.reshape(b, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, -1, d)
        y = self.layer(y)
        y = y.reshape(b, p, p, h // p, w // p, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)  # fold
        return self.fuse(torch.cat([x, self.proj(y)], 1))


class ShuffleBlock(nn.Module):
    """Grouped convolutions and ShuffleNet's channel shuffle (view / transpose / reshape)."""

    def __init__(self, c: int = 8, groups: int = 2) -> None:
        super().__init__()
        self.groups = groups
        self.expand = _ConvBN(c, 2 * c, 1, groups=groups, act=nn.ReLU)
        self.dw = _ConvBN(2 * c, 2 * c, 3, groups=2 * c, act=None)
        self.project = _ConvBN(2 * c, c, 1, groups=groups, act=None)
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        b, c, h, w = y.shape
        y = y.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)
        y = F.relu(x + self.project(self.dw(y)))
        return self.head(y.mean((2, 3)))


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mha_batch_first": (lambda: MHABlock(batch_first=True), (1, 10, 32)),
    "mha_seq_first": (lambda: MHABlock(batch_first=False), (10, 1, 32)),
    "mha_causal_mask": (lambda: MHABlock(causal=10), (1, 10, 32)),
    "encoder_post_relu": (
        lambda: nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="relu", batch_first=True),
        (1, 10, 32),
    ),
    "encoder_pre_gelu": (
        lambda: nn.TransformerEncoderLayer(32, 4, 64, 0.0, activation="gelu", batch_first=True, norm_first=True),
        (1, 10, 32),
    ),
    "timm_attention_unbind": (lambda: TimmAttention(gather=False), (1, 10, 32)),
    "timm_attention_gather": (lambda: TimmAttention(gather=True), (1, 10, 32)),
    "sdpa_attention": (lambda: TimmAttention(sdpa=True), (1, 10, 32)),
    "mbv3_block_hardsigmoid_se": (MBV3Block, (1, 16, 12, 12)),
    "squeezenet_fire_ceil_mode": (Fire, (1, 3, 33, 33)),
    "kws_conv1d": (KWSConv1d, (1, 40, 49)),
    "mobilevit_block": (MobileViTBlock, (1, 16, 8, 8)),
    "shufflenet_grouped": (ShuffleBlock, (1, 8, 12, 12)),
}


def make(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    """The module `name` of CASES in eval mode with seeded random weights (BatchNorm statistics
    randomized too, so folding them is exercised), and its example input shape."""
    factory, shape = CASES[name]
    torch.manual_seed(seed)
    m = factory()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval(), shape
