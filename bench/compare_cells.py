"""From-scratch cells vs torch's fused LSTM on one task (SST-2 sentiment, a slice): time and validation quality.

    python -m bench.compare_cells --rows=20000 --epochs=2

Every cell trains the same model with the same data, seed and schedule through `training.train_sentiment`, so
only the recurrent layer differs. Prints a Markdown table (docs/recurrent-networks.md quotes it).
"""

from __future__ import annotations

import argparse
import logging
import platform
import tempfile
from pathlib import Path

import torch

from rnntext.manifest import Manifest
from training import train_sentiment

CELLS = ("torch-lstm", "lstm", "gru", "rnn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/sst2/train.tsv")
    parser.add_argument("--rows", type=int, default=20000, help="first N rows of SST-2 train")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cell in CELLS:
            out = Path(tmp) / cell
            train_sentiment.main(
                [
                    f"--data={args.data}",
                    "--imdb=",
                    f"--out={out}",
                    f"--runs={tmp}",
                    f"--max-rows={args.rows}",
                    f"--epochs={args.epochs}",
                    f"--hidden={args.hidden}",
                    f"--embed={args.hidden}",
                    f"--cell={cell}",
                    "--threads=1",
                    "--pretrained=minilm",
                    "--extend-vocab=false",
                ]
            )
            m = Manifest.read(out)
            seconds = m.training["duration_seconds"]
            rows.append(
                (
                    cell,
                    seconds / args.epochs,
                    m.metrics["valid_accuracy"],
                    m.metrics["valid_loss"],
                    m.architecture["parameters"],
                    m.parity["max_abs_diff"],
                )
            )
    print(
        f"SST-2 first {args.rows} rows, {args.epochs} epochs, embed = hidden = {args.hidden}, MiniLM-initialised "
        "word vectors, bidirectional, "
        f"1 thread, torch {torch.__version__}, {platform.processor() or platform.machine()}\n"
    )
    print("| cell | seconds per epoch | vs torch-lstm | valid accuracy % | valid loss | parameters | ONNX parity |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = rows[0][1]
    for cell, sec, acc, loss, params, parity in rows:
        print(f"| {cell} | {sec:.1f} | {sec / base:.1f}x | {acc:.2f} | {loss:.4f} | {params:,} | {parity:.1e} |")


if __name__ == "__main__":
    main()
