"""A small Vision Transformer in PyTorch, written to export cleanly to ONNX for microtile.

    from compiler.models.vit import ViT, ViTConfig
    model = ViT(ViTConfig(img_size=32, patch=8, in_chans=1, embed_dim=32, depth=2, heads=2))

Patch embedding is a conv with kernel = stride = patch; a learned class token is prepended and a
learned position embedding added; `depth` pre-norm blocks of multi-head self-attention and an MLP
with GELU; a final LayerNorm and a linear head on the class token. Attention uses separate q/k/v
projections (no slicing of a fused qkv tensor) and an explicit softmax, so the exported graph maps
onto microtile's ops: conv2d, concat, add, layer_norm, fully_connected, transpose, batch_matmul,
softmax (the 1/sqrt(d_head) becomes softmax's beta), gelu and slice.
"""

from __future__ import annotations

import torch
from torch import nn

from compiler.models.vit_builder import ViTConfig  # the one config (torch-free); re-exported here

__all__ = ["ViT", "ViTConfig"]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)  # B, H, N, hd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float = 1e-5) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ViTConfig()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = nn.Conv2d(cfg.in_chans, d, kernel_size=cfg.patch, stride=cfg.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.tokens, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio, cfg.eps) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=cfg.eps)
        self.head = nn.Linear(d, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # B, N, D
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])
