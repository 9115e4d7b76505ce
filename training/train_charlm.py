"""Train the character language model behind /generate on Tiny Shakespeare, export it, write its artifact.

    python -m training.train_charlm --data=../shared/data/tinyshakespeare/train.txt --out=artifacts/charlm

Held out from training: the last `valid_fraction` of the file (contiguous, the validation figure, chosen on) and
`probe_blocks` short contiguous blocks spread through the rest, so that the card can show how much the difficulty
of a stretch of Shakespeare varies. The judge's text (the next 10 % of Tiny Shakespeare) is in none of them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnntext.manifest import IOSpec, TensorSpec
from rnntext.vocab import UNK, Vocab
from training.artifacts import ArtifactSpec, write_artifact
from training.config import ModelRunConfig, knob, parse_config
from training.data import read_text
from training.export import Signature
from training.loop import Distributed, FitResult, Schedule, fit, start_run
from training.models import CharLM

log = logging.getLogger("train_charlm")


SIGNATURE = Signature(
    inputs=["tokens", "h0", "c0"],
    outputs=["logits", "hn", "cn"],
    dynamic_axes={
        "tokens": {0: "batch", 1: "time"},
        "logits": {0: "batch", 1: "time"},
        **{name: {1: "batch"} for name in ("h0", "c0", "hn", "cn")},
    },
)
SAMPLE_PROMPT, SAMPLE_TEMPERATURES = "ROMEO:", (0.7, 1.0)


@dataclass
class TrainConfig(ModelRunConfig):
    """Character LM (embedding + LSTM) on Tiny Shakespeare."""

    script = "training.train_charlm"

    data: str = knob("../shared/data/tinyshakespeare/train.txt", "training text (UTF-8)")
    out: str = knob("artifacts/charlm", "artifact directory to write")
    valid_fraction: float = knob(0.1, "last share of the text held out for validation (the figure chosen on)")
    probe_blocks: int = knob(4, "further contiguous blocks held out, evenly spread before the validation text")
    probe_fraction: float = knob(0.01, "share of the text in each probe block")
    max_chars: int | None = knob(None, "use only the first N characters (quick runs, tests)")
    cell: Literal["torch-lstm", "lstm"] = knob("torch-lstm", "recurrent cell: torch's fused LSTM or ours")
    embed: int = knob(64, "character embedding size")
    hidden: int = knob(512, "LSTM hidden size")
    layers: int = knob(2, "LSTM layers")
    dropout: float = knob(0.3, "locked dropout on the LSTM's output; dropout between layers")
    embed_drop: float = knob(0.1, "locked dropout on the character embeddings")
    weight_drop: float = knob(0.4, "dropout on the hidden-to-hidden weights (AWD-LSTM's weight drop)")
    seq_len: int = knob(128, "characters per training window (truncated backprop length)")
    batch_size: int = knob(64, "windows per step")
    epochs: int = knob(16, "epochs (an epoch is steps_per_epoch batches of random windows)")
    steps_per_epoch: int = knob(400, "steps per epoch")
    average_last: int = knob(3, "also try the mean of the last N epochs' weights; kept if it validates better")
    unk_rate: float = knob(0.001, "share of input characters replaced by <unk>, so unseen characters are handled")
    name: str = knob("charlm-shakespeare", "model name in the manifest")
    version: str = knob("1.3.0", "model version in the manifest")


@dataclass(frozen=True)
class Split:
    """[start, end) character ranges of the text: where training windows may lie, and what is held out."""

    train: list[tuple[int, int]]
    valid: tuple[int, int]
    probes: list[tuple[int, int]]
    train_probe: tuple[int, int]  # a stretch of training text the size of a probe block: the generalisation gap


def split_text(length: int, cfg: TrainConfig) -> Split:
    valid = (int(length * (1 - cfg.valid_fraction)), length)
    size = int(length * cfg.probe_fraction)
    # Probe i is centred at (i + 1) / (blocks + 1) of the text before the validation part.
    probes = [
        (c - size // 2, c - size // 2 + size)
        for c in (valid[0] * (i + 1) // (cfg.probe_blocks + 1) for i in range(cfg.probe_blocks))
    ]
    train, cursor = [], 0
    for start, end in [*probes, valid]:
        if start > cursor:
            train.append((cursor, start))
        cursor = end
    first = max(train, key=lambda r: r[1] - r[0])
    return Split(train, valid, probes, (first[0], first[0] + size))


def window_starts(split: Split, seq_len: int) -> Tensor:
    """Every position a training window (seq_len + 1 characters) can start at without touching held-out text."""
    return torch.cat([torch.arange(a, b - seq_len - 1) for a, b in split.train if b - a > seq_len + 1])


def windows(
    ids: Tensor, starts: Tensor, cfg: TrainConfig, generator: torch.Generator, unk_id: int
) -> tuple[Tensor, Tensor]:
    picked = starts[torch.randint(0, len(starts), (cfg.batch_size,), generator=generator)]
    chunk = torch.stack([ids[s : s + cfg.seq_len + 1] for s in picked.tolist()])
    inputs, targets = chunk[:, :-1].clone(), chunk[:, 1:]
    inputs[torch.rand(inputs.shape, generator=generator) < cfg.unk_rate] = unk_id
    return inputs, targets


def stream_loss(model: CharLM, ids: Tensor, streams: int = 1, seq_len: int = 256) -> float:
    """Mean next-character loss over `ids` read in order with the state carried across chunks. With `streams` > 1
    the text is cut into that many contiguous parts read side by side (faster; each part starts from a zero
    state, so it scores a hair worse than one stream). Every character but the first of each part is scored."""
    part = len(ids) // streams
    rows = ids[: part * streams].reshape(streams, part)
    h, c = model.initial_state(streams)
    total, count = 0.0, 0
    for start in range(0, part - 1, seq_len):
        chunk = rows[:, start : start + seq_len + 1]
        logits, h, c = model(chunk[:, :-1], h, c)
        total += F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum").item()
        count += chunk[:, 1:].numel()
    return total / count


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, argv)
    dist = start_run(cfg.threads, cfg.seed)

    text = read_text(Path(cfg.data))[: cfg.max_chars]
    split = split_text(len(text), cfg)
    vocab = Vocab.build("".join(text[a:b] for a, b in split.train), specials=(UNK,))
    assert vocab.unk_id is not None
    ids = torch.tensor(vocab.encode(text))
    starts = window_starts(split, cfg.seq_len)
    valid_ids = ids[split.valid[0] : split.valid[1]]
    log.info(
        "%d training characters in %d ranges, %d validation, %d probe blocks of %d; vocabulary %d",
        sum(b - a for a, b in split.train),
        len(split.train),
        len(valid_ids),
        len(split.probes),
        split.train_probe[1] - split.train_probe[0],
        len(vocab),
    )

    model = CharLM(
        len(vocab), cfg.embed, cfg.hidden, cfg.layers, cfg.dropout, cfg.cell, cfg.weight_drop, cfg.embed_drop
    )

    def batches(epoch: int, dist: Distributed):  # type: ignore[no-untyped-def]
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch * 101 + dist.rank)  # resumable
        for _ in range(cfg.steps_per_epoch):
            yield windows(ids, starts, cfg, generator, vocab.unk_id)

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, targets = batch
        logits, _, _ = net(inputs, *model.initial_state(len(inputs)))
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def evaluate(net: nn.Module) -> dict[str, float]:
        loss = stream_loss(model, valid_ids, streams=8)
        return {"valid_loss": loss, "valid_bits_per_char": loss / math.log(2)}

    schedule = Schedule(cfg.epochs, cfg.lr, cfg.weight_decay, cfg.clip, average_last=cfg.average_last, bf16=cfg.bf16)
    result = fit(
        model,
        batches,
        loss_of,
        evaluate,
        "valid_loss",
        schedule,
        cfg.steps_per_epoch,
        maximize=False,
        checkpoint=Path(cfg.runs) / "charlm",
        resume=cfg.resume,
        dist=dist,
    )
    if dist.is_main:
        export(model, vocab, cfg, result, ids, split)


def export(model: CharLM, vocab: Vocab, cfg: TrainConfig, result: FitResult, ids: Tensor, split: Split) -> None:
    model.eval()
    with torch.no_grad():
        valid = stream_loss(model, ids[split.valid[0] : split.valid[1]])
        probes = [stream_loss(model, ids[a:b]) for a, b in split.probes]
        seen = stream_loss(model, ids[split.train_probe[0] : split.train_probe[1]])
    total = len(ids)
    probe_rows = [
        {"chars": f"{a:,}-{b:,}", "where": f"from {a / total:.0%}", "loss": round(loss, 4)}
        for (a, b), loss in zip(split.probes, probes, strict=True)
    ]
    state = TensorSpec(dtype="float32", shape=["layers", "batch", "hidden"])
    samples = {t: sample(model, vocab, SAMPLE_PROMPT, 300, t, seed=cfg.seed) for t in SAMPLE_TEMPERATURES}
    probe_table = "\n".join(
        ["| held-out block | position in train.txt | loss (nats/char) |", "| --- | --- | ---: |"]
        + [
            f"| probe {i + 1} (characters {r['chars']}) | {r['where']} | {r['loss']:.4f} |"
            for i, r in enumerate(probe_rows)
        ]
        + [
            f"| validation (characters {split.valid[0]:,}-{split.valid[1]:,}) | last {cfg.valid_fraction:.0%} "
            f"| {valid:.4f} |",
            f"| a stretch it trained on ({split.train_probe[0]:,}-{split.train_probe[1]:,}) | - | {seen:.4f} |",
        ]
    )
    spec = ArtifactSpec(
        task="charlm",
        signature=SIGNATURE,
        example=(torch.zeros(2, 3, dtype=torch.long), *model.initial_state(2)),
        parity_cases=[parity_case(model, batch, steps, len(vocab)) for batch in (1, 7) for steps in (1, 5, 300)],
        io=IOSpec(
            inputs={"tokens": TensorSpec(dtype="int64", shape=["batch", "time"]), "h0": state, "c0": state},
            outputs={"logits": TensorSpec(dtype="float32", shape=["batch", "time", "vocab"]), "hn": state, "cn": state},
            tokens="tokens",
            logits="logits",
            state=[("h0", "hn"), ("c0", "cn")],
        ),
        vocab=vocab.to_json(),
        encoder={"start_text": "\n"},
        architecture={
            "cell": cfg.cell,
            "embed": cfg.embed,
            "hidden": cfg.hidden,
            "layers": cfg.layers,
            "vocab": len(vocab),
            "regularisation": f"weight drop {cfg.weight_drop}, locked dropout {cfg.embed_drop} in / {cfg.dropout} out",
        },
        metrics={
            "valid_loss": round(valid, 4),
            "valid_bits_per_char": round(valid / math.log(2), 4),
            "valid_chars": split.valid[1] - split.valid[0],
            "split": f"last {cfg.valid_fraction:.0%} of the training file, read in order as one stream",
            "probe_losses": probe_rows,
            "trained_stretch_loss": round(seen, 4),
            "characters_seen": cfg.epochs * cfg.steps_per_epoch * cfg.batch_size * cfg.seq_len,
        },
        curves_metric="valid_loss",
        curves_title=f"{cfg.name}: Tiny Shakespeare",
        summary="Character-level LSTM language model trained on Tiny Shakespeare; serves /generate.",
        sections={
            "What each loss is measured on": (
                "Loss in nats per character on held-out parts of `train.txt` (the first 90 % of Tiny Shakespeare), "
                "each read in order with the state carried. The validation text chose the weights; the probe "
                "blocks were never trained on either and show how much one stretch of Shakespeare differs from "
                "another; the last row is text the model trained on (the gap to it is the overfitting).\n\n"
                + probe_table
                + "\n\nThe published figures for this corpus (nanoGPT's 1.47) are on the last 10 % of Tiny "
                "Shakespeare, which is not in our data and reads harder than ours: compare them with the held-out "
                "judge's figure, not with these."
            ),
            **{
                f"Sample at temperature {t} after `{SAMPLE_PROMPT}` (seed {cfg.seed})": "```\n" + s + "\n```"
                for t, s in samples.items()
            },
            "Known weaknesses": "Low temperatures loop on common phrases; sample at 0.7-1.0. Characters outside "
            "the training text map to `<unk>`; the model has seen it only as noise (a 0.1 % input corruption).",
        },
        data=[Path(cfg.data)],
    )
    write_artifact(Path(cfg.out), model, spec, cfg, result)
    log.info("wrote %s (valid loss %.4f, probes %s)", cfg.out, valid, [r["loss"] for r in probe_rows])


def parity_case(model: CharLM, batch: int, steps: int, vocab: int) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(batch * 1000 + steps)
    h, c = (torch.randn(model.layers, batch, model.hidden, generator=generator) * 0.5 for _ in range(2))
    return torch.randint(0, vocab, (batch, steps), generator=generator), h, c


@torch.no_grad()
def sample(model: CharLM, vocab: Vocab, prompt: str, length: int, temperature: float, seed: int) -> str:
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    h, c = model.initial_state(1)
    logits, h, c = model(torch.tensor([vocab.encode(prompt)]), h, c)
    out = []
    for _ in range(length):
        logits[..., vocab.unk_id] = -math.inf
        nxt = int(torch.multinomial(torch.softmax(logits[0, -1] / temperature, -1), 1, generator=generator))
        out.append(vocab.tokens[nxt])
        logits, h, c = model(torch.tensor([[nxt]]), h, c)
    return prompt + "".join(out)


if __name__ == "__main__":
    main()
