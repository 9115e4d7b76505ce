"""Typed training configs, overridable from the command line as --key=value (no config framework, no exec)."""

from __future__ import annotations

import argparse
import dataclasses
import types
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

C = TypeVar("C")


def parse_config(cls: type[C], argv: list[str] | None = None, description: str | None = None) -> C:
    """Build an argparse parser from the dataclass fields (help text from field metadata) and parse argv."""
    parser = argparse.ArgumentParser(description=description or cls.__doc__)
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = _scalar_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else None
        flags = dict.fromkeys([f"--{field.name.replace('_', '-')}", f"--{field.name}"])  # --max-rows and --max_rows
        parser.add_argument(
            *flags,
            dest=field.name,
            type=_parse_bool if kind is bool else kind,
            default=default,
            help=f"{field.metadata.get('help', '')} (default: {default})",
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


@dataclasses.dataclass
class RunConfig:
    """Knobs every training script shares: where to write, the optimiser, threads and seed."""

    out: str = knob("artifacts/model", "artifact directory to write")
    runs: str = knob("runs", "directory for the best checkpoint (not committed)")
    epochs: int = knob(10, "passes over the training data")
    lr: float = knob(2e-3, "peak learning rate (AdamW, warmup then cosine)")
    weight_decay: float = knob(0.01, "AdamW weight decay")
    clip: float = knob(1.0, "gradient norm clip")
    threads: int = knob(1, "torch CPU threads")
    seed: int = knob(1337, "random seed")
    name: str = knob("model", "model name in the manifest")
    version: str = knob("1.0.0", "model version in the manifest")
