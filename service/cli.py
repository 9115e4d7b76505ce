"""The `rnnserve` command (pyproject's [project.scripts]): one entry point for serving, training and evaluating.

    rnnserve serve --port=8000 --workers-sentiment=2       # python -m service.server, flags = RNNSERVE_* settings
    rnnserve train sentiment --epochs=3                     # python -m training.train_sentiment --epochs=3
    rnnserve train --nproc-per-node=2 sentiment ...         # the same under torchrun (DistributedDataParallel)
    rnnserve evaluate artifacts/ner ../shared/data/conll2003/valid.txt

There is no `export` command: every training run exports its ONNX model, checks parity and writes the artifact.
Only the standard library and the settings are imported here; `serve` then imports the torch-free service, and
`train` and `evaluate` run their scripts in a child process, so `rnnserve serve` never imports torch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from service.tasks import TASKS  # constants only: no pydantic, no torch

PREFIX = "RNNSERVE_"
# Settings that carry no description in service/settings.py get theirs here, so every flag is explained.
EXTRA_HELP = {
    "port": "TCP port to listen on",
    "log_level": "level of the service's own log lines",
    "workers_generate": "/generate worker processes (each steps up to --generate-max-batch generations together)",
    "workers_sentiment": "/sentiment worker processes",
    "workers_ner": "/ner worker processes",
}
NOT_FLAGS = {"api_key": "a command line is visible to every user of the machine"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnserve",
        description="Serve, train and evaluate the rnnserve models (char LM, sentiment, NER).",
        epilog="`rnnserve COMMAND --help` explains each command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_train(commands)
    _add_evaluate(commands)
    return parser


def _add_serve(commands: Any) -> None:
    from service.settings import Settings  # pydantic only: cheap, and no torch

    serve = commands.add_parser(
        "serve",
        help="run the HTTP server (python -m service.server)",
        description="Run the HTTP server: the three models behind LitServe with onnxruntime (no torch). Each flag "
        "sets the RNNSERVE_* environment variable of the same name; a flag left out keeps the environment's value "
        "or the default.",
        epilog=" ".join(
            f"Set {PREFIX}{k.upper()} in the environment, not as a flag: {why}." for k, why in NOT_FLAGS.items()
        ),
    )
    for name, field in Settings.model_fields.items():
        if name in NOT_FLAGS:
            continue
        env = PREFIX + name.upper()
        default = field.default if field.default is not None else "automatic"
        text = field.description or EXTRA_HELP.get(name, "")
        options: dict[str, Any] = {"dest": name, "default": None, "help": f"{text} [{env}, default: {default}]"}
        kind = _scalar(field.annotation)
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif get_origin(kind) is Literal:
            options["choices"] = [str(c) for c in get_args(kind)]
        else:
            options["type"] = str if kind is Path else kind
            options["metavar"] = {int: "N", float: "X", Path: "DIR"}.get(kind, "VALUE")
        serve.add_argument(f"--{name.replace('_', '-')}", **options)


def _scalar(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _add_train(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train one model and write its artifact (python -m training.train_TASK)",
        description="Train one model, export it to ONNX with a parity check and write artifacts/TASK (needs the "
        "train extra: pip install -e '.[train]'). Everything after TASK goes to the training script unchanged: "
        "its flags are the fields of that script's TrainConfig, listed by `rnnserve train TASK --help`.",
    )
    train.add_argument("--nproc-per-node", type=int, default=1, metavar="N",
                       help="processes on this machine: N > 1 runs under torchrun (DistributedDataParallel; gloo "
                            "on CPU, nccl on GPU) [default: 1]")  # fmt: skip
    train.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    # Optional for argparse, so that a bare `rnnserve train` is told what is missing (`main` requires it).
    train.add_argument("task", nargs="?", choices=TASKS, help="which model: charlm (/generate), sentiment or ner")
    train.add_argument("args", nargs=argparse.REMAINDER, help="--key=value flags for the training script")


WRAPPER_FLAGS = ("--nproc-per-node", "--dry-run")  # rnnserve train's own flags, also accepted after TASK


def wrapper_flags_after_task(args: argparse.Namespace) -> None:
    """Move `--nproc-per-node=N` (or `--nproc-per-node N`) and `--dry-run` written after TASK from the training
    script's arguments to rnnserve's: argparse hands everything after TASK to the script."""
    rest, kept = list(args.args), []
    while rest:
        arg = rest.pop(0)
        name, has_value, value = arg.partition("=")
        if name == "--dry-run":
            args.dry_run = True
        elif name == "--nproc-per-node":
            if not has_value:
                if not rest:
                    raise SystemExit("rnnserve train: --nproc-per-node needs a number")
                value = rest.pop(0)
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"rnnserve train: --nproc-per-node must be a positive number, not {value!r}")
            args.nproc_per_node = int(value)
        else:
            kept.append(arg)
    args.args = kept


def _add_evaluate(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score an artifact on a data file through onnxruntime (python -m training.evaluate)",
        description="Score an artifact on a data file through onnxruntime, exactly as served (no torch needed), "
        "and print the metrics as JSON. Point it only at training or validation files.",
    )
    evaluate.add_argument("artifact", help="artifact directory, e.g. artifacts/sentiment")
    evaluate.add_argument("data", help="a labelled TSV (sentiment), a CoNLL file (ner) or plain text (charlm)")
    evaluate.add_argument("--limit", type=int, metavar="N", help="sentiment: score a seeded sample of N rows")
    evaluate.add_argument(
        "--tail", type=float, metavar="SHARE", help="charlm: score the last SHARE of the text [default: 1.0, all]"
    )
    evaluate.add_argument("--seed", type=int, metavar="N", help="seed of the --limit sample [default: 0]")
    evaluate.add_argument(
        "--valid", action="store_true", help="sentiment: score only the validation rows the artifact's run held out"
    )
    evaluate.add_argument("--imdb", metavar="FILE", help="sentiment --valid: IMDb train.tsv, for its reviews")
    evaluate.add_argument(
        "--ensemble", nargs="+", metavar="DIR", help="ner: further taggers (same vocabulary) to average with"
    )


def serve_environment(args: argparse.Namespace) -> dict[str, str]:
    """The RNNSERVE_* variables that the given flags set."""
    env = {}
    for name, value in vars(args).items():
        if name in ("command",) or value is None:
            continue
        env[PREFIX + name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def train_command(args: argparse.Namespace) -> list[str]:
    module = f"training.train_{args.task}"
    if args.nproc_per_node > 1:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={args.nproc_per_node}",
                "-m", module, *args.args]  # fmt: skip
    return [sys.executable, "-m", module, *args.args]


def evaluate_arguments(args: argparse.Namespace) -> list[str]:
    argv = [args.artifact, args.data]
    for name in ("limit", "tail", "seed", "imdb"):
        if getattr(args, name) is not None:
            argv.append(f"--{name}={getattr(args, name)}")
    if args.valid:
        argv.append("--valid")
    if args.ensemble:
        argv += ["--ensemble", *args.ensemble]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        os.environ.update(serve_environment(args))
        from service.server import main as serve

        serve()
        return 0
    if args.command == "train":
        if args.task is None:
            parser.error(f"train needs a TASK: one of {', '.join(TASKS)} (rnnserve train TASK [training flags])")
        wrapper_flags_after_task(args)
        command = train_command(args)
        if args.dry_run:
            print(" ".join(command))
            return 0
        return subprocess.call(command)
    return subprocess.call([sys.executable, "-m", "training.evaluate", *evaluate_arguments(args)])


if __name__ == "__main__":
    sys.exit(main())
