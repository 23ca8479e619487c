"""Plan peaks of the nas_vit_token winner's ViT shape, dense and low-rank, on the STM32F746.

    PYTHONPATH=. python benchmarks/vit_lowrank_peak.py

r160 p8 d48 L1 h4 mlp3.0 (401 tokens) exported from nas.space_vit with random weights (a plan
depends on shapes only), PTQ on 4 random images, scored by nas.score.score_graph (plan_for):
prints the chosen plan's peak and the smallest peak per plan kind for the MLP factorised at rank
ratio 0.5, the dense model (1.0), and q/k/v/out + MLP factorised ("all", 0.5). Takes a few minutes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nas.score import quantize_module, score_graph  # noqa: E402
from nas.space_vit import VitSpace, VitSupernet, export_vit  # noqa: E402

torch.set_num_threads(1)
board = "stm32f746g-disco"
for lowrank in ("mlp", "all"):
    sp = VitSpace(
        num_classes=4,
        embed_dims=(32, 48),
        depths=(1, 2),
        heads=(2, 4),
        mlp_ratios=(2.0, 3.0),
        patches=(8,),
        resolutions=(160,),
        rank_ratios=(0.5, 0.75, 1.0),
        lowrank=lowrank,
    )
    torch.manual_seed(0)
    net = VitSupernet(sp).eval()
    for rank in (0.5, 1.0) if lowrank == "mlp" else (0.5,):
        a = sp.normalize({"res": 160, "patch": 8, "embed": 48, "depth": 1, "heads": 4, "mlp_ratio": 3.0, "rank": rank})
        calib = np.random.default_rng(0).uniform(-1, 1, (4, 1, 160, 160)).astype(np.float32)
        g = quantize_module(export_vit(net, a), calib)
        sc = score_graph(g, board)
        print(
            f"lowrank={lowrank} rank={rank}: chosen {sc.schedule} peak {sc.plan_peak:,} by kind {sc.peak_by_kind} "
            f"flash {sc.flash_bytes:,} macs {sc.macs:,}",
            flush=True,
        )
