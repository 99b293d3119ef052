"""PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_history(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Training loss and accuracy per step, validation accuracy where evaluated."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [r["step"] for r in rows]
    ax1.plot(steps, [r["loss"] for r in rows], label="train loss", alpha=0.6)
    ev = [r for r in rows if "val_loss" in r]
    ax1.plot([r["step"] for r in ev], [r["val_loss"] for r in ev], "o-", label="val loss")
    ax1.set_xlabel("step")
    ax1.set_title("Bradley–Terry loss")
    ax1.legend()
    ax2.plot(steps, [r["accuracy"] for r in rows], label="train pair acc", alpha=0.6)
    ax2.plot([r["step"] for r in ev], [r["val_accuracy"] for r in ev], "o-",
             label="val pair acc")
    ax2.set_xlabel("step")
    ax2.set_ylim(0, 1)
    ax2.set_title("pairwise accuracy")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_best_of_n(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Bars: top-1 by reward vs random pick vs oracle, per evaluated model."""
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r["model"] for r in rows]
    width = 0.25
    for k, key in enumerate(["random", "top1", "oracle"]):
        xs = [i + (k - 1) * width for i in range(len(rows))]
        ax.bar(xs, [r[key] * 100 for r in rows], width, label=key)
    ax.set_xticks(range(len(rows)), names)
    ax.set_ylabel("pass rate of the picked candidate (%)")
    ax.set_title("best-of-N on held-out problems")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
