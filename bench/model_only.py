"""In-process model figures: onnxruntime vs PyTorch eager at batch 1 and 32, and the hardware limit.

The limit: FLOPs per request counted from the graph's weight shapes (every LSTM, convolution and dense layer is a
matrix multiply: 2 FLOPs per weight per position), against the matrix-multiply rate numpy measures on this
machine. `ceiling req/s = matmul FLOP/s / FLOPs per request`: no runtime can beat it on these cores.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from bench.results import ChunkRow, ModelRow, OpProfile, OpShare, PaddingRow
from rnntext.artifact import Encoder
from rnntext.encoders import NerEncoder, SentimentEncoder, pad
from service.runtime import OnnxModel, session_options, verify_files
from service.tasks.ner import NerModel
from service.tasks.sentiment import SentimentModel

SERVING_CHUNKS = {"sentiment": SentimentModel.chunk, "ner": NerModel.chunk}  # sentences per call of a large batch


MATMUL_N = 2048  # the ceiling's matmul: n x n float32


def matmul_gflops(n: int = MATMUL_N, seconds: float = 1.0) -> float:
    """Best float32 n x n matmul rate with numpy's BLAS on all cores (GFLOP/s)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


@dataclass(frozen=True)
class GraphFlops:
    per_position: float  # LSTM + per-token dense layers: FLOPs per token (character for the char LM)
    per_request: float  # dense layers applied once per request (pooled heads)
    per_char: float  # character convolution: FLOPs per character position


def graph_flops(path: Path) -> GraphFlops:
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    position = request = char = 0.0
    for node in graph.node:
        weights = [inits[i] for i in node.input[1:] if i in inits]
        if node.op_type == "LSTM":
            position += 2 * (inits[node.input[1]].size + inits[node.input[2]].size)  # W x + R h per step, each dir
        elif node.op_type == "MatMul" and weights:
            position += 2 * weights[0].size
        elif node.op_type == "Gemm" and weights:
            request += 2 * weights[0].size
        elif node.op_type == "Conv" and weights:
            char += 2 * weights[0].size
    return GraphFlops(position, request, char)


def sentiment_batch(encoder: SentimentEncoder, texts: list[str], pad_id: int) -> dict[str, Any]:
    tokens, lengths = pad([encoder.encode(t) for t in texts], pad_id)
    return {"tokens": tokens, "lengths": lengths}


def ner_batch(encoder: NerEncoder, texts: list[str]) -> dict[str, Any]:
    feats = [encoder.encode([t.text for t in encoder.tokenize(s)]) for s in texts]
    words, chars, lengths = encoder.pad_batch(feats)
    return {"words": words, "chars": chars, "lengths": lengths}


def mean_flops(task: str, directory: Path, texts: list[str]) -> float:
    """Average FLOPs of one request over `texts` (for the char LM: one generated character)."""
    manifest, encoder = verify_files(directory)
    f = graph_flops(directory / manifest.model_file)
    if task == "charlm":
        return f.per_position
    if isinstance(encoder, SentimentEncoder):
        return float(np.mean([f.per_position * len(encoder.encode(t)) + f.per_request for t in texts]))
    assert isinstance(encoder, NerEncoder)
    total = []
    for text in texts:
        feats = encoder.encode([t.text for t in encoder.tokenize(text)])
        total.append(f.per_position * feats.chars.shape[0] + f.per_char * feats.chars.size + f.per_request)
    return float(np.mean(total))


def time_call(fn: Callable[[], object], seconds: float = 0.6) -> float:
    """Median seconds of one call (after two warm-up calls)."""
    fn()
    fn()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def feeds_for(task: str, directory: Path, texts: list[str], batch: int) -> dict[str, Any]:
    manifest, encoder = verify_files(directory)
    if task == "charlm":
        a = manifest.architecture
        state = np.zeros((int(a["layers"]), batch, int(a["hidden"])), dtype=np.float32)
        return {"tokens": np.ones((batch, 1), dtype=np.int64), "h0": state, "c0": state.copy()}
    return encode_texts(encoder, texts[:batch])


def encode_texts(encoder: Encoder, texts: list[str]) -> dict[str, Any]:
    """/sentiment or /ner texts -> the padded feeds of one call."""
    if isinstance(encoder, SentimentEncoder):
        return sentiment_batch(encoder, texts, encoder.vocab.pad_id or 0)
    assert isinstance(encoder, NerEncoder)
    return ner_batch(encoder, texts)


def measure(
    artifacts: Path, texts: dict[str, list[str]], batches: tuple[int, ...] = (1, 32), threads: tuple[int, ...] = (1, 2)
) -> list[ModelRow]:
    import torch  # only here: the model-only comparison needs PyTorch

    from bench.torch_from_onnx import torch_model

    rows = []
    for task in ("sentiment", "ner", "charlm"):
        directory = artifacts / task
        ort = {t: OnnxModel.load(directory, device="cpu", threads=t) for t in threads}
        eager = torch_model(directory)
        # Model-only timing averages over different sentences: one call per batch from a rotating window.
        for batch in batches:
            n = len(texts.get(task, [""]))
            windows = [feeds_for(task, directory, texts.get(task, [""])[i : i + batch], batch) for i in range(0, 8)]
            windows = windows if n > 8 else windows[:1]
            ort_ms = {t: 1000 * time_call(_rotating(m.session, windows)) for t, m in ort.items()}
            torch_ms = {}
            for t in threads:
                torch.set_num_threads(t)
                torch_ms[t] = 1000 * time_call(_rotating(eager.session, windows))
            flops = mean_flops(task, directory, texts.get(task, [""])[:200])
            rows.append(ModelRow(task, batch, ort_ms, torch_ms, flops))
    return rows


def _rotating(session: Any, windows: list[dict[str, Any]]) -> Callable[[], object]:
    """One call per invocation, each on the next batch of real inputs."""
    state = {"i": 0}

    def call() -> object:
        state["i"] += 1
        return session.run(None, windows[state["i"] % len(windows)])

    return call


def padding_study(artifacts: Path, texts: dict[str, list[str]], n: int = 64, chunk: int = 8) -> list[PaddingRow]:
    """`n` real sentences through onnxruntime (1 thread) three ways: one call padded to the longest, `n` calls of
    one sentence, and sorted by length in calls of `chunk`. Padding costs what the padded steps would cost. Also
    the time to turn the `n` texts into padded ids (tokenizer and vocabulary, in Python)."""
    rows = []
    for task in ("sentiment", "ner"):
        directory = artifacts / task
        model = OnnxModel.load(directory, device="cpu", threads=1)
        sample = texts[task][:n]
        lengths, chunks = sorted_chunks(task, directory, sample, chunk)
        padded = [feeds_for(task, directory, sample, n)]
        singles = [feeds_for(task, directory, [t], 1) for t in sample]

        def calls(feeds: list[dict[str, Any]], session: Any = model.session) -> Callable[[], object]:
            return lambda: [session.run(None, f) for f in feeds]

        rows.append(
            PaddingRow(
                task,
                sentences=len(sample),
                chunk=chunk,
                mean_length=float(np.mean(lengths)),
                max_length=int(max(lengths)),
                padded_ms=1000 * time_call(calls(padded)),
                singles_ms=1000 * time_call(calls(singles)),
                sorted_chunks_ms=1000 * time_call(calls(chunks)),
                encode_ms=1000 * time_call(functools.partial(encode_texts, model.encoder, sample)),
            )
        )
    return rows


def sorted_chunks(task: str, directory: Path, sample: list[str], chunk: int) -> tuple[list[int], list[dict[str, Any]]]:
    """Each sentence's length, and the sentences sorted by length in feeds of `chunk` (as a worker cuts a batch)."""
    lengths = [int(feeds_for(task, directory, [t], 1)["lengths"][0]) for t in sample]
    ordered = [t for _, t in sorted(zip(lengths, sample, strict=True), key=lambda x: x[0])]
    return lengths, [feeds_for(task, directory, ordered[i : i + chunk], chunk) for i in range(0, len(sample), chunk)]


def op_profile(artifacts: Path, texts: dict[str, list[str]], n: int = 64, top: int = 5) -> list[OpProfile]:
    """Where a serving call's time goes, by operator: onnxruntime's profiler (1 thread) over `n` real sentences in
    length-sorted calls of the service's chunk size, as a worker runs them. Profiling adds some time to every node;
    shares are what to read."""
    rows = []
    for task in ("sentiment", "ner"):
        directory = artifacts / task
        manifest, _ = verify_files(directory)
        chunk = SERVING_CHUNKS[task]
        _, chunks = sorted_chunks(task, directory, texts[task][:n], chunk)
        options = session_options(1)
        options.enable_profiling = True
        with tempfile.TemporaryDirectory() as tmp:
            options.profile_file_prefix = str(Path(tmp) / task)
            session = ort.InferenceSession(str(directory / manifest.model_file), options, ["CPUExecutionProvider"])
            for _ in range(5):
                for feeds in chunks:
                    session.run(None, feeds)
            events = json.loads(Path(session.end_profiling()).read_text())
        by_op: dict[str, float] = {}
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                by_op[e["args"]["op_name"]] = by_op.get(e["args"]["op_name"], 0.0) + e["dur"]
        calls = 5 * len(chunks)
        total = sum(by_op.values())
        ranked = sorted(by_op.items(), key=lambda kv: -kv[1])[:top]
        rows.append(OpProfile(task, chunk, total / calls, [OpShare(op, us / calls, us / total) for op, us in ranked]))
    return rows


def chunk_study(
    artifacts: Path,
    texts: dict[str, list[str]],
    sizes: tuple[int, ...] = (11, 24, 64),
    chunks: tuple[int, ...] = (4, 8, 16),
    rounds: int = 25,
    chunk_threads: int = 2,
) -> list[ChunkRow]:
    """The serving call of a large batch (`OnnxModel.output_by_length`: length-sorted chunks on `chunk_threads`
    threads, one intra-op thread each) for several chunk sizes. The sizes alternate within each round, so that the
    machine's slow seconds hit all of them alike; median ms per call."""
    rows = []
    for task in ("sentiment", "ner"):
        directory = artifacts / task
        model = OnnxModel.load(directory, device="cpu", threads=1, chunk_threads=chunk_threads)
        name = next(iter(model.manifest.io.outputs))
        for n in sizes:
            windows = [feeds_for(task, directory, texts[task][i : i + n], n) for i in range(0, 8 * n, n)]
            times: dict[int, list[float]] = {c: [] for c in chunks}
            for r in range(rounds):
                feeds = windows[r % len(windows)]
                for c in chunks:
                    t0 = time.perf_counter()
                    model.output_by_length(name, feeds, c)
                    times[c].append(time.perf_counter() - t0)
            rows.append(
                ChunkRow(task, n, {c: 1000 * float(np.median(v)) for c, v in times.items()}, rounds, chunk_threads)
            )
    return rows
