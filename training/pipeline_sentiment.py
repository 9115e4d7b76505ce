"""The sentiment recipe of issue 14 in one command: teacher -> transfer set -> student, each step timed.

    python -m training.pipeline_sentiment --work=runs/sentiment-distill --out=artifacts/sentiment

Runs `training.teacher_sentiment`, `training.transfer_set` and `training.train_sentiment --transfer` in turn (each
shows its own progress bars), shares the data files, seed and validation split between them, and writes
`<work>/steps.json`: each step's command and seconds. With `--skip-done` (the default) a step whose output is
already complete is not run again, so a long run that stopped goes on where it was. `--teacher-args`,
`--transfer-args` and `--student-args` pass extra flags to one step ("--epochs=2 --batch-size=64").
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.config import RunConfig, knob, parse_config

log = logging.getLogger("pipeline_sentiment")


@dataclass
class PipelineConfig(RunConfig):
    """Teacher (all-MiniLM-L6-v2, fine-tuned) -> transfer set (teacher logits) -> served BiLSTM student."""

    script = "training.pipeline_sentiment"

    data: str = knob("../shared/data/sst2/train.tsv", "SST-2 train.tsv")
    imdb: str = knob("../shared/data/imdb/train.tsv", "IMDb train.tsv ('': none)")
    unsup: str = knob("../shared/data/imdb/unsup.txt.gz", "unlabeled IMDb reviews for transfer sentences ('': none)")
    work: str = knob("runs/sentiment-distill", "teacher, transfer set, checkpoints and steps.json (not committed)")
    out: str = knob("artifacts/sentiment", "the student's artifact directory")
    max_rows: int | None = knob(None, "use only the first N rows of each file (quick runs, tests)")
    device: Literal["auto", "cpu", "cuda"] = knob("auto", "teacher and labelling device (the student trains on CPU)")
    skip_done: bool = knob(True, "do not rerun a step whose output is complete")
    teacher_args: str = knob("", "extra flags for training.teacher_sentiment")
    transfer_args: str = knob("", "extra flags for training.transfer_set")
    student_args: str = knob("", "extra flags for training.train_sentiment")


def steps(cfg: PipelineConfig) -> list[tuple[str, Callable[[list[str]], None], list[str], Path]]:
    """(name, main, argv, the file that marks the step done)."""
    from training import teacher_sentiment, train_sentiment, transfer_set

    work = Path(cfg.work)
    teacher, transfer = work / "teacher", work / "transfer"
    shared = [f"--seed={cfg.seed}", f"--threads={cfg.threads}"]
    shared += [f"--max-rows={cfg.max_rows}"] if cfg.max_rows is not None else []
    teacher_argv = [f"--data={cfg.data}", f"--imdb={cfg.imdb}", f"--out={teacher}", f"--runs={work}"]
    teacher_argv += [f"--device={cfg.device}", *shared]
    transfer_argv = [f"--teacher={teacher}", f"--data={cfg.data}", f"--imdb={cfg.imdb}", f"--unsup={cfg.unsup}"]
    transfer_argv += [f"--out={transfer}", f"--device={cfg.device}", *shared]
    student_argv = [f"--data={cfg.data}", f"--imdb={cfg.imdb}", f"--transfer={transfer}", f"--out={cfg.out}"]
    student_argv += [f"--runs={work}", *shared]
    extra = [shlex.split(a) for a in (cfg.teacher_args, cfg.transfer_args, cfg.student_args)]
    return [
        ("teacher", teacher_sentiment.main, [*teacher_argv, *extra[0]], teacher / teacher_sentiment.TEACHER_FILE),
        ("transfer", transfer_set.main, [*transfer_argv, *extra[1]], transfer / transfer_set.RECORD_FILE),
        ("student", train_sentiment.main, [*student_argv, *extra[2]], Path(cfg.out) / "manifest.json"),
    ]


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(PipelineConfig, argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    record_path = work / "steps.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    planned = steps(cfg)
    for number, (name, run, args, done) in enumerate(planned, start=1):
        command = f"python -m training.{run.__module__.split('.')[-1]} {shlex.join(args)}"
        # The student's artifact directory holds the last model until the new one is written: never "done" then.
        if cfg.skip_done and done.is_file() and name != "student":
            log.info("step %d/%d %s: done already (%s), skipped", number, len(planned), name, done)
            continue
        log.info("step %d/%d %s: %s", number, len(planned), name, command)
        started = time.monotonic()
        run(args)
        seconds = time.monotonic() - started
        record[name] = {"command": command, "seconds": round(seconds, 1)}
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        log.info("step %d/%d %s: %.1f s", number, len(planned), name, seconds)
    log.info("steps: %s", ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in record.items()))


if __name__ == "__main__":
    main()
