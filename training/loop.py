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
    best_epoch: int  # 1-based; 0 when the kept weights are the mean of the last epochs' (`Schedule.average_last`)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0  # training time summed over every resumed part of the run
    resumed: int = 0  # how many times the run went on from its last checkpoint
    averaged: dict[str, float] | None = None  # the averaged weights' metrics, when they were tried


@dataclass(frozen=True)
class Schedule:
    epochs: int
    lr: float
    weight_decay: float = 0.0
    clip: float = 1.0
    warmup_steps: int = 100
    patience: int | None = None  # stop after this many epochs without improvement
    average_last: int = 0  # also try the mean weights of the last N epochs (0: don't)
    bf16: bool = False  # forward pass under bfloat16 autocast; weights, optimiser state and evaluation stay float32


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
    resume: bool = False,
    dist: Distributed | None = None,
) -> FitResult:
    """Train for `schedule.epochs`; `batches(epoch, dist)` yields this rank's batches, `evaluate` returns metrics.

    The learning rate warms up linearly, then follows a cosine to 5 % of its peak. The weights with the best
    validation `metric` are kept and returned; with `schedule.average_last`, so is the mean of the last epochs'
    weights if it validates better. `checkpoint` is a directory: `best.pt` holds the best weights, `last.pt`
    everything needed to go on after the last finished epoch (`resume=True`). Resuming is exact when `batches`
    depends only on its epoch (seeded per epoch) and the model's randomness on torch's global generator.
    """
    dist = dist or Distributed()
    trained = nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    device = next(model.parameters()).device.type
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
    first_epoch, since_best, averaged_sum = 0, 0, None
    last = checkpoint / "last.pt" if checkpoint is not None else None
    if resume:
        if last is None or not last.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        state = torch.load(last, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        result = state["result"]
        result.resumed += 1
        first_epoch, since_best, averaged_sum = state["epoch"], state["since_best"], state["averaged_sum"]
        log.info(
            "resumed after epoch %d of %d (best %s %.4g)", first_epoch, schedule.epochs, metric, result.best_metric
        )
    average_from = schedule.epochs - schedule.average_last  # epochs (0-based) from here on enter the mean
    start = time.monotonic()
    for epoch in range(first_epoch, schedule.epochs):
        trained.train()
        losses = []
        bar = tqdm(batches(epoch, dist), total=steps_per_epoch, desc=f"epoch {epoch + 1}", disable=not dist.is_main)
        for batch in bar:
            with torch.autocast(device, dtype=torch.bfloat16, enabled=schedule.bf16):
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
                checkpoint.mkdir(parents=True, exist_ok=True)
                torch.save(result.best_state, checkpoint / "best.pt")
        else:
            since_best += 1
        if schedule.average_last and epoch >= average_from:
            averaged_sum = _add_states(averaged_sum, model.state_dict())
        if dist.is_main:
            log.info("epoch %d: %s%s", epoch + 1, _fmt(row), " (best)" if improved else "")
        stopping = schedule.patience is not None and since_best >= schedule.patience
        if last is not None and dist.is_main:
            result.seconds += time.monotonic() - start
            start = time.monotonic()
            checkpoint.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
            saved = {
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "result": result,
                "since_best": since_best,
                "averaged_sum": averaged_sum,
            }
            torch.save(saved, last.with_suffix(".tmp"))
            last.with_suffix(".tmp").replace(last)  # a run killed mid-write keeps its previous checkpoint
        if stopping:
            break
    result.seconds += time.monotonic() - start
    if averaged_sum is not None:
        _try_average(model, averaged_sum, schedule.average_last, evaluate, metric, sign, result)
    model.load_state_dict(result.best_state)
    return result


def _add_states(total: dict[str, Tensor] | None, state: dict[str, Tensor]) -> dict[str, Tensor]:
    if total is None:
        return {k: v.detach().clone().double() for k, v in state.items()}
    return {k: total[k] + v.double() for k, v in state.items()}


def _try_average(
    model: nn.Module,
    summed: dict[str, Tensor],
    count: int,
    evaluate: Callable[[nn.Module], dict[str, float]],
    metric: str,
    sign: float,
    result: FitResult,
) -> None:
    """Checkpoint averaging: the mean of the last `count` epochs' weights, kept when it validates better."""
    reference = model.state_dict()
    mean = {k: (v / count).to(reference[k].dtype) for k, v in summed.items()}
    model.load_state_dict(mean)
    model.eval()
    with torch.no_grad():
        result.averaged = evaluate(model)
    log.info("mean of the last %d epochs: %s", count, _fmt(result.averaged))
    if sign * result.averaged[metric] > sign * result.best_metric:
        result.best_state, result.best_metric, result.best_epoch = mean, result.averaged[metric], 0


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
