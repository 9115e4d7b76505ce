"""A run stopped after an epoch and resumed (--resume) ends exactly where the uninterrupted run ends; checkpoint
averaging keeps the mean weights only when they validate better; the recorded command reproduces the config."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from training import train_ner
from training.config import command_of, parse_config
from training.loop import Distributed, FitResult, Schedule, fit


class Interrupted(Exception):
    pass


def run(checkpoint: Path, *, stop_at_epoch: int | None = None, resume: bool = False, average: int = 0) -> FitResult:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 1))  # dropout: the RNG state matters

    def batches(epoch: int, dist: Distributed) -> Iterator[tuple[Tensor, Tensor]]:
        if epoch == stop_at_epoch:
            raise Interrupted  # as if the session ended here: the previous epoch's checkpoint is on disk
        generator = torch.Generator().manual_seed(epoch)
        for _ in range(5):
            x = torch.randn(16, 4, generator=generator)
            yield x, x.sum(1, keepdim=True)

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        return nn.functional.mse_loss(net(batch[0]), batch[1])

    def evaluate(net: nn.Module) -> dict[str, float]:
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(99))
        return {"valid_loss": nn.functional.mse_loss(net(x), x.sum(1, keepdim=True)).item()}

    schedule = Schedule(epochs=4, lr=1e-2, warmup_steps=2, average_last=average)
    return fit(model, batches, loss_of, evaluate, "valid_loss", schedule, 5, False, checkpoint, resume)


def test_a_resumed_run_ends_with_the_same_weights_and_history(tmp_path: Path) -> None:
    whole = run(tmp_path / "whole")
    with pytest.raises(Interrupted):
        run(tmp_path / "parts", stop_at_epoch=2)
    resumed = run(tmp_path / "parts", resume=True)
    assert resumed.resumed == 1 and whole.resumed == 0
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.history == whole.history
    for name, tensor in whole.best_state.items():
        torch.testing.assert_close(resumed.best_state[name], tensor, rtol=0, atol=0, msg=name)


def test_resume_without_a_checkpoint_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"last\.pt"):
        run(tmp_path / "none", resume=True)


def test_checkpoint_averaging_is_kept_only_when_it_validates_better(tmp_path: Path) -> None:
    result = run(tmp_path / "avg", average=2)
    assert result.averaged is not None
    best_single = min(row["valid_loss"] for row in result.history)
    if result.averaged["valid_loss"] < best_single:
        assert result.best_epoch == 0 and result.best_metric == result.averaged["valid_loss"]
    else:
        assert result.best_epoch >= 1 and result.best_metric == best_single


def test_the_recorded_command_parses_back_to_the_same_config() -> None:
    cfg = parse_config(train_ner.TrainConfig, ["--epochs=3", "--lower-share=0.3", "--crf=false", "--resume=true"])
    command = command_of(cfg)
    program, flags = command.split(" --", 1)
    assert program == "python -m training.train_ner"
    again = parse_config(train_ner.TrainConfig, shlex.split("--" + flags))
    assert again == parse_config(train_ner.TrainConfig, ["--epochs=3", "--lower-share=0.3", "--crf=false"])
    assert "--resume" not in command  # a resumed run is reproduced by running it from the start


def test_a_misspelt_choice_is_refused_with_the_choices() -> None:
    with pytest.raises(SystemExit):
        parse_config(train_ner.TrainConfig, ["--cell=lstn"])
