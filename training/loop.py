"""One training loop for all three tasks: seeded, clipped, scheduled, validated every epoch, best kept.

It also scales out unchanged under `torchrun` (DistributedDataParallel, gloo on CPU): each rank trains on its
own shard of every epoch's batches and the gradients are averaged, so all ranks end with the same weights.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Distributed:
    """Join the process group when started by torchrun (WORLD_SIZE set); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend)
    return Distributed(torch.distributed.get_rank(), world)


def start_run(threads: int, seed: int) -> Distributed:
    """What every training script does first: log lines with times, its CPU threads, its seed, its process group."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(threads)
    seed_everything(seed)
    return init_distributed()


@dataclass
class FitResult:
    best_state: dict[str, Tensor]
    best_metric: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Schedule:
    epochs: int
    lr: float
    weight_decay: float = 0.0
    clip: float = 1.0
    warmup_steps: int = 100
    patience: int | None = None  # stop after this many epochs without improvement


def fit(
    model: nn.Module,
    batches: Callable[[int, Distributed], Iterable[Any]],
    loss_of: Callable[[nn.Module, Any], Tensor],
    evaluate: Callable[[nn.Module], dict[str, float]],
    metric: str,
    schedule: Schedule,
    steps_per_epoch: int,
    maximize: bool = True,
    checkpoint: Path | None = None,
    dist: Distributed | None = None,
) -> FitResult:
    """Train for `schedule.epochs`; `batches(epoch, dist)` yields this rank's batches, `evaluate` returns metrics.

    The learning rate warms up linearly, then follows a cosine to 5 % of its peak. The weights with the best
    validation `metric` are kept (in memory and in `checkpoint`) and returned.
    """
    dist = dist or Distributed()
    trained = nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    total = max(1, schedule.epochs * steps_per_epoch)
    warmup = min(schedule.warmup_steps, total // 10 + 1)  # short runs (tests) still reach the peak rate

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    sign = 1.0 if maximize else -1.0
    result = FitResult(copy.deepcopy(model.state_dict()), -math.inf * sign, -1)
    start, since_best = time.monotonic(), 0
    for epoch in range(schedule.epochs):
        trained.train()
        losses = []
        bar = tqdm(batches(epoch, dist), total=steps_per_epoch, desc=f"epoch {epoch + 1}", disable=not dist.is_main)
        for batch in bar:
            loss = loss_of(trained, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), schedule.clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if len(losses) % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        model.eval()
        with torch.no_grad():
            metrics = evaluate(model)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **metrics}
        result.history.append(row)
        improved = sign * metrics[metric] > sign * result.best_metric
        if improved:
            result.best_state = copy.deepcopy(model.state_dict())
            result.best_metric, result.best_epoch, since_best = metrics[metric], epoch + 1, 0
            if checkpoint is not None and dist.is_main:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save(result.best_state, checkpoint)
        else:
            since_best += 1
        if dist.is_main:
            log.info("epoch %d: %s%s", epoch + 1, _fmt(row), " (best)" if improved else "")
        if schedule.patience is not None and since_best >= schedule.patience:
            break
    result.seconds = time.monotonic() - start
    model.load_state_dict(result.best_state)
    return result


def _fmt(row: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch")


def plot_history(history: list[dict[str, float]], metric: str, path: Path, title: str) -> None:
    """Training loss and the validation metric per epoch, side by side, as a PNG for the model card."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train loss")
    if "valid_loss" in history[0]:
        left.plot(epochs, [row["valid_loss"] for row in history], marker="o", label="validation loss")
    left.set_xlabel("epoch")
    left.legend()
    right.plot(epochs, [row[metric] for row in history], marker="o", color="tab:green")
    right.set_xlabel("epoch")
    right.set_ylabel(f"validation {metric}")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
