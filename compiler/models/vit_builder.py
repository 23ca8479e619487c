"""int8 Vision Transformer graphs with seeded random weights, for benchmarks and planner tests.

`build_vit(ViTConfig(...))` returns a `compiler.core.ir.Graph` in the shape the ONNX importer gives a
PyTorch ViT (tokens are [1, T, D]):

  image [1, H, W, C] int8 -> conv2d (kernel = stride = patch) -> reshape [1, P, D]
  -> concat(class token, patches) -> add(position embedding)                        = x0
  per block (pre-norm):
    x -> layer_norm -> q/k/v fully_connected -> reshape [1, T, heads, dh] -> transpose
      -> batch_matmul(q, k^T) -> softmax(beta = 1/sqrt(dh)) -> batch_matmul(., v)
      -> transpose -> reshape [1, T, D] -> fully_connected (proj) -> add(x, .)     = x'
    x' -> layer_norm -> fully_connected (D -> ratio*D) -> gelu -> fully_connected -> add(x', .)
  slice(class token) -> layer_norm -> reshape [1, D] -> fully_connected (head)      = logits

Quantization is calibrated: a float numpy forward pass (the float semantics of
`compiler.core.transformer_ops`) over a few seeded random images records every activation's range;
activations get asymmetric per-tensor int8 scales, weights symmetric per-channel int8, biases
int32, LayerNorm gamma/beta stay float32 (quantized by `compiler.core.lower`), softmax outputs 1/256.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compiler.core import transformer_ops as F
from compiler.core.ir import Graph, Op, QParams, Tensor


@dataclass(frozen=True)
class ViTConfig:
    """The one ViT description: `build_vit` builds it as an int8 IR graph with seeded random
    weights, `compiler.models.vit.ViT` as a PyTorch module (the NAS ViT space exports to it).

    img_size x img_size x in_chans images cut into patch x patch patches (tokens = patches + a
    class token) of embed_dim features; `depth` pre-norm blocks of `heads`-head attention and an
    MLP of int(embed_dim * mlp_ratio) hidden features; num_classes logits. eps: LayerNorm epsilon
    (PyTorch's default). seed and calib_images: `build_vit`'s random weights and calibration
    images (the PyTorch module trains or copies its own weights).
    ValueError when img_size is not a multiple of patch or embed_dim of heads."""

    img_size: int = 32
    patch: int = 8
    in_chans: int = 1
    embed_dim: int = 32
    depth: int = 2
    heads: int = 2
    mlp_ratio: float = 2.0
    num_classes: int = 10
    eps: float = 1e-5
    seed: int = 0
    calib_images: int = 2

    def __post_init__(self) -> None:
        if self.img_size % self.patch:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch {self.patch}")
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not a multiple of heads {self.heads}")

    @property
    def tokens(self) -> int:
        return (self.img_size // self.patch) ** 2 + 1

    @property
    def hidden(self) -> int:
        """MLP hidden features."""
        return int(self.embed_dim * self.mlp_ratio)

    @property
    def name(self) -> str:
        return (
            f"vit_i{self.img_size}_p{self.patch}_d{self.embed_dim}_l{self.depth}_h{self.heads}"
            f"_r{self.mlp_ratio:g}_s{self.seed}"
        )


class _Builder:
    """Records float values per tensor while it emits IR ops; quantizes at the end."""

    def __init__(self, cfg: ViTConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.g = Graph(name=cfg.name)
        self.vals: dict[str, np.ndarray] = {}  # float activations, [N, *shape[1:]]
        self.fixed: dict[str, QParams] = {}
        self.same_as: dict[str, str] = {}  # tensor -> tensor whose quantization it shares
        self.pending: list[tuple[str, str, str | None, np.ndarray, np.ndarray | None]] = []

    # -- tensors ----------------------------------------------------------------------------
    def act(self, name: str, value: np.ndarray, shape: tuple[int, ...]) -> str:
        self.g.add_tensor(Tensor(name, shape, "int8"))
        self.vals[name] = value
        return name

    def op(self, kind: str, name: str, ins: list[str], out: str, **attrs) -> str:
        self.g.add_op(Op(kind, name, ins, [out], dict(attrs)))
        return out

    # -- layers -------------------------------------------------------------------------------
    def linear(self, name: str, x: str, n_out: int, fan_gain: float = 1.0) -> str:
        xv = self.vals[x]
        n_in = xv.shape[-1]
        w = self.rng.normal(0.0, fan_gain / math.sqrt(n_in), size=(n_out, n_in))
        b = self.rng.normal(0.0, 0.1, size=n_out)
        y = xv @ w.T + b
        shape = self.g.t(x).shape[:-1] + (n_out,)
        out = self.act(f"{name}.out", y, shape)
        self.pending.append(("fc", name, x, w, b))
        self.op("fully_connected", name, [x, f"{name}.w", f"{name}.b"], out, activation="none")
        return out

    def layer_norm(self, name: str, x: str) -> str:
        d = self.g.t(x).shape[-1]
        gamma = (1.0 + 0.2 * self.rng.normal(size=d)).astype(np.float32)
        beta = (0.2 * self.rng.normal(size=d)).astype(np.float32)
        self.g.add_tensor(Tensor(f"{name}.gamma", (d,), "float32", data=gamma))
        self.g.add_tensor(Tensor(f"{name}.beta", (d,), "float32", data=beta))
        y = F.layer_norm(self.vals[x], gamma, beta, self.cfg.eps)
        out = self.act(f"{name}.out", y, self.g.t(x).shape)
        return self.op("layer_norm", name, [x, f"{name}.gamma", f"{name}.beta"], out, axis=-1, epsilon=self.cfg.eps)

    def view(self, kind: str, name: str, x: str, shape: tuple[int, ...], **attrs) -> str:
        xv = self.vals[x]
        n = xv.shape[0]
        if kind == "reshape":
            y = xv.reshape((n, *shape[1:]))
        elif kind == "transpose":
            y = np.transpose(xv, tuple(attrs["perm"]))
        else:
            idx = F.slice_index(xv.shape, attrs["begin"], [n if i == 0 else s for i, s in enumerate(attrs["size"])])
            y = xv[idx]
        out = self.act(f"{name}.out", y, shape)
        self.same_as[out] = x
        return self.op(kind, name, [x], out, **attrs)

    def add(self, name: str, a: str, b: str) -> str:
        out = self.act(f"{name}.out", self.vals[a] + self.vals[b], self.g.t(a).shape)
        return self.op("add", name, [a, b], out, activation="none")

    def block(self, i: int, x: str) -> str:
        cfg = self.cfg
        t, d, h = cfg.tokens, cfg.embed_dim, cfg.heads
        dh = d // h
        pre = f"b{i}"
        ln = self.layer_norm(f"{pre}.ln1", x)
        q = self.linear(f"{pre}.q", ln, d)
        k = self.linear(f"{pre}.k", ln, d)
        v = self.linear(f"{pre}.v", ln, d)
        qh = self.view("reshape", f"{pre}.q_split", q, (1, t, h, dh))
        kh = self.view("reshape", f"{pre}.k_split", k, (1, t, h, dh))
        vh = self.view("reshape", f"{pre}.v_split", v, (1, t, h, dh))
        qt = self.view("transpose", f"{pre}.q_heads", qh, (1, h, t, dh), perm=(0, 2, 1, 3))
        kt = self.view("transpose", f"{pre}.k_heads_t", kh, (1, h, dh, t), perm=(0, 2, 3, 1))
        vt = self.view("transpose", f"{pre}.v_heads", vh, (1, h, t, dh), perm=(0, 2, 1, 3))
        s = self.act(f"{pre}.scores.out", F.batch_matmul(self.vals[qt], self.vals[kt]), (1, h, t, t))
        self.op("batch_matmul", f"{pre}.scores", [qt, kt], s, transpose_b=False)
        beta = 1.0 / math.sqrt(dh)
        z = self.vals[s] * beta
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        p = self.act(f"{pre}.softmax.out", e / e.sum(axis=-1, keepdims=True), (1, h, t, t))
        self.fixed[p] = QParams(1.0 / 256, -128)
        self.op("softmax", f"{pre}.softmax", [s], p, beta=beta)
        o = self.act(f"{pre}.attn.out", F.batch_matmul(self.vals[p], self.vals[vt]), (1, h, t, dh))
        self.op("batch_matmul", f"{pre}.attn", [p, vt], o, transpose_b=False)
        om = self.view("transpose", f"{pre}.merge", o, (1, t, h, dh), perm=(0, 2, 1, 3))
        om = self.view("reshape", f"{pre}.merge_r", om, (1, t, d))
        a = self.linear(f"{pre}.proj", om, d)
        x1 = self.add(f"{pre}.res1", x, a)
        ln2 = self.layer_norm(f"{pre}.ln2", x1)
        h1 = self.linear(f"{pre}.fc1", ln2, cfg.hidden)
        hg = self.act(f"{pre}.gelu.out", F.gelu(self.vals[h1]), self.g.t(h1).shape)
        self.op("gelu", f"{pre}.gelu", [h1], hg, approximate="none")
        m = self.linear(f"{pre}.fc2", hg, d)
        return self.add(f"{pre}.res2", x1, m)

    def build(self) -> Graph:
        cfg = self.cfg
        hw, p, c, d = cfg.img_size, cfg.patch, cfg.in_chans, cfg.embed_dim
        if hw % p or d % cfg.heads:
            raise ValueError("image must be a multiple of patch and embed a multiple of heads")
        hp = hw // p
        n = cfg.calib_images
        img_q = self.rng.integers(-128, 128, size=(n, hw, hw, c))
        # a smooth component so images are not pure noise
        yy, xx = np.meshgrid(np.arange(hw), np.arange(hw), indexing="ij")
        img_q = np.clip(img_q // 2 + (60 * np.sin(xx / 7.0 + yy / 11.0))[None, :, :, None], -128, 127)
        x = self.act("image", ((img_q + 128) / 255.0).astype(np.float64), (1, hw, hw, c))
        self.fixed[x] = QParams(1.0 / 255, -128)
        self.g.inputs = [x]
        # patch embedding: conv kernel = stride = patch
        w = self.rng.normal(0.0, 1.0 / math.sqrt(p * p * c), size=(d, p, p, c))
        b = self.rng.normal(0.0, 0.1, size=d)
        patches = self.vals[x].reshape(n, hp, p, hp, p, c)
        y = np.einsum("nhiwjc,oijc->nhwo", patches, w) + b
        pe = self.act("embed.out", y, (1, hp, hp, d))
        self.pending.append(("conv", "embed", x, w, b))
        self.op("conv2d", "embed", [x, "embed.w", "embed.b"], pe, stride=(p, p), dilation=(1, 1), pads=(0, 0, 0, 0),
                activation="none")  # fmt: skip
        tok = self.view("reshape", "embed.tokens", pe, (1, hp * hp, d))
        cls = self.rng.normal(0.0, 1.0, size=(1, 1, d))
        self.g.add_tensor(Tensor("cls_token", (1, 1, d), "int8"))
        cat = self.act("cat.out", np.concatenate([np.broadcast_to(cls, (n, 1, d)), self.vals[tok]], axis=1),
                       (1, cfg.tokens, d))  # fmt: skip
        self.op("concat", "cat", ["cls_token", tok], cat, axis=1, activation="none")
        pos = self.rng.normal(0.0, 0.5, size=(1, cfg.tokens, d))
        self.g.add_tensor(Tensor("pos_embed", (1, cfg.tokens, d), "int8"))
        xs = self.act("pos.out", self.vals[cat] + pos, (1, cfg.tokens, d))
        self.op("add", "pos", [cat, "pos_embed"], xs, activation="none")
        for i in range(cfg.depth):
            xs = self.block(i, xs)
        cls_t = self.view("slice", "cls", xs, (1, 1, d), begin=[0, 0, 0], size=[1, 1, d])
        lnf = self.layer_norm("ln_f", cls_t)
        feat = self.view("reshape", "feat", lnf, (1, d))
        logits = self.linear("head", feat, cfg.num_classes)
        self.g.outputs = [logits]
        self._quantize(cls, pos)
        _c_names(self.g)
        self.g.verify()
        return self.g

    # -- quantization -------------------------------------------------------------------------
    def _act_q(self, v: np.ndarray) -> QParams:
        lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
        scale = max(hi - lo, 1e-6) / 255.0
        zp = int(np.clip(round(-128 - lo / scale), -128, 127))
        return QParams(np.float32(scale), zp)

    def _quantize(self, cls: np.ndarray, pos: np.ndarray) -> None:
        g = self.g
        # the concat's inputs share its quantization: calibrate it over all of them
        self.same_as["embed.out"] = "cat.out"
        for name in self.vals:
            if name in self.fixed:
                g.t(name).quant = self.fixed[name]
            elif name not in self.same_as:
                g.t(name).quant = self._act_q(self.vals[name])
        for name in self.vals:
            root = name
            while root in self.same_as:
                root = self.same_as[root]
            if root != name:
                g.t(name).quant = g.t(root).quant
        cq = g.t("cat.out").quant
        g.t("cls_token").data = np.clip(np.round(cls / cq.s) + cq.zp, -128, 127).astype(np.int8)
        g.t("cls_token").quant = cq
        pq = self._act_q(pos)
        g.t("pos_embed").data = np.clip(np.round(pos / pq.s) + pq.zp, -128, 127).astype(np.int8)
        g.t("pos_embed").quant = pq
        for kind, name, x, w, b in self.pending:
            axes = tuple(range(1, w.ndim))
            ws = np.maximum(np.abs(w).max(axis=axes), 1e-8) / 127.0
            wq = np.clip(np.round(w / ws.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
            g.add_tensor(Tensor(f"{name}.w", w.shape, "int8", QParams(ws.astype(np.float32), np.zeros(len(ws)), 0),
                                data=wq))  # fmt: skip
            bs = np.float32(g.t(x).quant.s) * ws.astype(np.float32)
            bq = np.round(b / bs).astype(np.int32)
            g.add_tensor(Tensor(f"{name}.b", b.shape, "int32", QParams(bs, np.zeros(len(bs)), 0), data=bq))
            del kind


def _c_names(g: Graph) -> None:
    """Tensor and op names become C identifiers ("b0.q.w" -> "b0_q_w")."""

    def c(n: str) -> str:
        return n.replace(".", "_")

    g.tensors = {c(k): t for k, t in g.tensors.items()}
    for t in g.tensors.values():
        t.name = c(t.name)
    for op in g.ops:
        op.name = c(op.name)
        op.inputs = [c(n) for n in op.inputs]
        op.outputs = [c(n) for n in op.outputs]
    g.inputs = [c(n) for n in g.inputs]
    g.outputs = [c(n) for n in g.outputs]


def build_vit(cfg: ViTConfig) -> Graph:
    """An int8 ViT graph with seeded random weights and calibrated quantization."""
    return _Builder(cfg).build()
