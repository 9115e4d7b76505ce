"""The servers the benchmark compares, in one list: how each is started and how the report names it.

Adding a server is one `Kind` line here: `bench.servers` starts it, `python -m bench.run` measures it (its
`--servers` default is every kind), the head-to-head rounds and the report's tables take it in. Targets name the
kinds they compare (`bench.targets`); a kind not measured leaves its targets out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str  # key in results.json and --servers
    label: str  # the report's column and row name
    module: str  # started as `python -m <module>`
    what: str  # the report's one-line description (markdown)


OURS = "ours"
KINDS: tuple[Kind, ...] = (
    Kind(
        OURS,
        "ours (LitServe + ORT)",
        "service.server",
        "`python -m service.server` with its default settings: LitServe, onnxruntime, dynamic batching of "
        "/sentiment and /ner, continuous batching of /generate",
    ),
    Kind(
        "fastapi-torch",
        "(a) FastAPI + torch",
        "bench.baseline_fastapi",
        "`bench/baseline_fastapi.py`: FastAPI + uvicorn + PyTorch eager in one process, plain `def` routes "
        "(FastAPI's thread pool), torch's default threads, no batching: every request, and every character of a "
        "stream, is a model call of its own; what a user writes by hand",
    ),
    Kind(
        "litserve-torch",
        "(b) LitServe + torch",
        "bench.baseline_litserve_torch",
        "`bench/baseline_litserve_torch.py`: our server with PyTorch eager instead of onnxruntime in each worker; "
        "only the LitAPIs' `load_model` differs, so it inherits everything else: the routes, the dynamic batching "
        "of /sentiment and /ner, the continuous batching of /generate, the workers and the threads per worker",
    ),
)
# Baseline (c), issue 18: kept out of KINDS because the head-to-head rounds and the side-by-side table also measure
# /generate, which (c) does not serve; bench/tail.py measures it against ours, one server at a time.
PLAIN_LITSERVE = Kind(
    "litserve-onnx",
    "(c) LitServe + ORT",
    "bench.baseline_litserve_onnx",
    "`bench/baseline_litserve_onnx.py`: plain `ls.LitAPI`s over the same `rnntext` encoders and onnxruntime "
    "sessions (onnxruntime's defaults), a padding `batch()`, `max_batch_size=16`, `batch_timeout=0.005`, "
    "LitServe's own queues, batched loop and defaults otherwise; /sentiment and /ner only",
)
BY_NAME = {k.name: k for k in (*KINDS, PLAIN_LITSERVE)}


def label(name: str) -> str:
    return BY_NAME[name].label if name in BY_NAME else name
