"""`plan.png` / `plan.svg`: live arena bytes per step, the picture MCUNetV2 draws (Lin et al. 2021,
Fig. 1). matplotlib is optional: without it nothing is drawn and `Plan.render()`'s text
timeline (in plan.txt) is the picture."""

from __future__ import annotations

from compiler.schedule.plan import Plan


def plot_plan(plan: Plan, budget: int | None = None) -> dict[str, bytes]:
    """{"plan.png": ..., "plan.svg": ...}: bars of the arena bytes live at each step (KB =
    1024 B), the arena size and the plan budget as lines; {} when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    import io

    live = [b / 1024 for b in plan.live_bytes_per_step()]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(live)), 3.5))
    ax.bar(range(len(live)), live, color="#4c78a8", label="live arena")
    ax.axhline(plan.arena_bytes / 1024, color="#f58518", linestyle="--", label=f"arena {plan.arena_bytes:,} B")
    if budget is not None:
        ax.axhline(budget / 1024, color="#e45756", linestyle=":", label=f"plan budget {budget:,} B")
    ax.set_xlabel("step")
    ax.set_ylabel("KB (1024 B)")
    ax.set_title(f"{plan.graph.name}: {plan.schedule} plan, SRAM over steps")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    out: dict[str, bytes] = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=100)
        out[f"plan.{fmt}"] = buf.getvalue()
    plt.close(fig)
    return out


def plan_text(plan: Plan) -> str:
    """plan.txt: every buffer and step (`Plan.dump`), then the arena timeline (`Plan.render`)."""
    return plan.dump() + "\n\n" + plan.render() + "\n"


__all__ = ["plan_text", "plot_plan"]
