"""`--bf16`: the training forward pass runs under bfloat16 autocast, while the weights, the optimiser's update and
the evaluation (the figure weights are chosen on, and what is exported) stay float32."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from training.loop import Distributed, Schedule, fit


@pytest.mark.parametrize("bf16", [False, True])
def test_bf16_autocasts_training_only(bf16: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    seen: dict[str, set[torch.dtype]] = {"train": set(), "eval": set()}

    def batches(epoch: int, dist: Distributed) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(epoch)
        for _ in range(20):
            x = torch.randn(32, 4, generator=generator)
            yield x, x.sum(1, keepdim=True)

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        out = net(batch[0])
        seen["train"].add(out.dtype)
        return nn.functional.mse_loss(out.float(), batch[1])

    def evaluate(net: nn.Module) -> dict[str, float]:
        x = torch.randn(256, 4, generator=torch.Generator().manual_seed(99))
        out = net(x)
        seen["eval"].add(out.dtype)
        return {"valid_loss": nn.functional.mse_loss(out, x.sum(1, keepdim=True)).item()}

    schedule = Schedule(epochs=3, lr=1e-2, warmup_steps=2, bf16=bf16)
    result = fit(model, batches, loss_of, evaluate, "valid_loss", schedule, 20, maximize=False)

    assert seen["train"] == {torch.bfloat16 if bf16 else torch.float32}
    assert seen["eval"] == {torch.float32}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert result.history[-1]["valid_loss"] < 0.5 * result.history[0]["valid_loss"]  # it still learns
