"""Typed training configs, overridable from the command line as --key=value (no config framework, no exec)."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import types
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

C = TypeVar("C", bound="RunConfig")


def parse_config(cls: type[C], argv: list[str] | None = None, description: str | None = None) -> C:
    """Build an argparse parser from the dataclass fields (help text from field metadata) and parse argv.

    `Literal[...]` fields become choices, so a misspelt `--cell` fails here rather than deep inside training."""
    parser = argparse.ArgumentParser(prog=f"python -m {cls.script}", description=description or cls.__doc__)
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = _scalar_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else None
        flags = dict.fromkeys([f"--{field.name.replace('_', '-')}", f"--{field.name}"])  # --max-rows and --max_rows
        options: dict[str, Any] = {"type": _parse_bool if kind is bool else kind}
        if get_origin(kind) is Literal:
            options = {"type": str, "choices": get_args(kind)}
        parser.add_argument(
            *flags,
            dest=field.name,
            default=default,
            help=f"{field.metadata.get('help', '')} (default: {default})",
            **options,
        )
    return cls(**vars(parser.parse_args(argv)))


def _scalar_type(hint: Any) -> Any:
    # `int | None` and friends: argparse needs the concrete type.
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    return hint


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def knob(default: Any, help: str) -> Any:
    """A config field with a help text: `lr: float = knob(1e-3, "peak learning rate")`."""
    return dataclasses.field(default=default, metadata={"help": help})


def command_of(config: RunConfig) -> str:
    """The command that reproduces `config`: its script with every knob spelled out, so that the record does not
    depend on the defaults of the day nor on how the script was called (`main(argv)` from another script)."""
    flags = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is None or field.name == "resume":
            continue  # None has no command-line spelling; a resumed run is reproduced by running it from scratch
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flags.append(f"--{field.name.replace('_', '-')}={shlex.quote(text)}")
    return " ".join([f"python -m {config.script}", *flags])


@dataclasses.dataclass
class RunConfig:
    """Knobs every training script shares: where to write, the optimiser, threads and seed."""

    script: ClassVar[str] = "training"  # the module `python -m` runs, recorded in the manifest's command

    out: str = knob("artifacts/model", "artifact directory to write")
    runs: str = knob("runs", "directory for checkpoints (not committed)")
    epochs: int = knob(10, "passes over the training data")
    lr: float = knob(2e-3, "peak learning rate (AdamW, warmup then cosine)")
    weight_decay: float = knob(0.01, "AdamW weight decay")
    clip: float = knob(1.0, "gradient norm clip")
    average_last: int = knob(0, "also try the mean of the last N epochs' weights; kept if it validates better")
    resume: bool = knob(False, "continue from the run's last checkpoint (saved after every epoch)")
    threads: int = knob(1, "torch CPU threads")
    seed: int = knob(1337, "random seed")
    name: str = knob("model", "model name in the manifest")
    version: str = knob("1.0.0", "model version in the manifest")


@dataclasses.dataclass
class ModelRunConfig(RunConfig):
    """Knobs of the trainers of the served models (CPU runs): RunConfig's and the training forward pass's precision.
    (The teacher, which may run on a GPU, has its own `precision` with an "auto".)"""

    bf16: bool = knob(
        False,
        "train under bfloat16 autocast: faster where the CPU has bf16 units (1.7x a char LM step with AMX on a Xeon "
        "Sapphire Rapids, 1.8x an LSTM step with AVX512-BF16 on an EPYC Zen 4), far slower where it has none (10x on "
        "an older 2-core EPYC); weights, optimiser, evaluation and export stay float32",
    )
