"""The report's model-only part: onnxruntime vs PyTorch per call, the FLOP ceiling, padding, operators, chunk
sizes, and the served rates as a share of the ceiling."""

from __future__ import annotations

from bench.kinds import label
from bench.markdown import num, table
from bench.results import Results


def model_table(r: Results) -> str:
    gf = r.matmul_gflops
    rows = []
    for m in r.model_only:
        best = min([*m.ort_ms.values(), *m.torch_ms.values()])
        items = m.batch / (best / 1000)
        ceiling = gf * 1e9 / m.flops_per_item
        rows.append(
            [m.task, str(m.batch)]
            + [num(v, 2) for v in m.ort_ms.values()]
            + [num(v, 2) for v in m.torch_ms.values()]
            + [f"{m.flops_per_item / 1e6:.1f}", num(items), num(ceiling), f"{100 * items / ceiling:.1f} %"]
        )
    threads = list(r.model_only[0].ort_ms)
    head = ["model", "batch"] + [f"ORT {t} thr ms" for t in threads] + [f"torch {t} thr ms" for t in threads]
    head += ["MFLOP / item", "best items/s", "ceiling items/s", "share"]
    return table(head, rows)


def stream_batching(r: Results) -> str:
    rows = {m.batch: m for m in r.model_only if m.task == "charlm"}
    if 1 not in rows or len(rows) < 2:
        return ""
    n = max(rows)
    one, many = min(rows[1].ort_ms.values()), min(rows[n].ort_ms.values())
    return (
        f"\nChar LM, onnxruntime: one step for {n} streams takes {many:.2f} ms, {n} single steps {n * one:.2f} ms: "
        f"stepping concurrent streams together would make {n * one / many:.1f}× the characters per core.\n"
    )


def padding(r: Results) -> str:
    rows = [
        [
            p.task,
            f"{p.sentences} (mean {p.mean_length:.1f}, max {p.max_length} tokens)",
            num(p.padded_ms, 1),
            num(p.singles_ms, 1),
            f"{num(p.sorted_chunks_ms, 1)} ({p.chunk} per call)",
            f"{p.padded_ms / p.sorted_chunks_ms:.1f}×",
            num(p.encode_ms, 2),
        ]
        for p in r.padding
    ]
    if not rows:
        return ""
    head = ["model", "real sentences", "one padded call ms", "one call each ms", "sorted by length ms"]
    head += ["padded ÷ sorted", "texts -> ids ms"]
    intro = (
        "\nPadding, onnxruntime 1 thread: the same sentences in one call padded to the longest, one call each, and "
        "sorted by length in small calls. A padded batch costs about what its padded steps would cost. The last "
        "column is the worker's Python before the model: tokenizing the sentences and padding their ids:\n\n"
    )
    return intro + table(head, rows) + "\n"


def chunk_sizes(r: Results) -> str:
    from bench.model_only import SERVING_CHUNKS as in_use

    if not r.chunks:
        return ""
    sizes = list(r.chunks[0].ms)
    rows = []
    for p in r.chunks:
        best = min(p.ms, key=lambda c: p.ms[c])
        cells = [f"**{num(v, 2)}**" if c == best else num(v, 2) for c, v in p.ms.items()]
        rows.append([p.task, str(p.sentences), *cells, str(in_use[p.task])])
    first = r.chunks[0]
    threads = f"on {first.threads} threads " if first.threads else ""
    rounds = f"within each of {first.rounds} rounds" if first.rounds else "within each round"
    intro = (
        f"\n### Chunk size\n\nA large /sentiment or /ner batch runs as length-sorted chunks {threads}"
        f"(`OnnxModel.output_by_length`): median ms per batch for each chunk size, the sizes alternating {rounds} "
        "(best in bold):\n\n"
    )
    head = ["model", "sentences", *[f"chunks of {c} ms" for c in sizes], "chunk in use"]
    return intro + table(head, rows) + "\n"


def op_profile(r: Results) -> str:
    rows = [
        [
            p.task,
            str(p.chunk),
            num(p.us_per_call),
            ", ".join(f"{o.op} {o.share:.0%} ({num(o.us_per_call)} µs)" for o in p.ops),
        ]
        for p in r.op_profile
    ]
    if not rows:
        return ""
    intro = (
        "\nWhere a serving call's time goes (onnxruntime's profiler, 1 thread, the same sentences in length-sorted "
        "calls of the size shown, the service's own at the time of the run; the profiler adds time to every node, "
        "the shares are what to read):\n\n"
    )
    head = ["model", "sentences per call", "µs per call", "largest operators: share (µs per call)"]
    return intro + table(head, rows) + "\n"


def served_share(r: Results) -> str:
    def cell(task: str, rate: float | None) -> str:
        return "–" if rate is None else f"{num(rate)} ({100 * r.ceiling_share(task, rate):.1f} %)"

    rows = []
    for name, srv in r.servers.items():
        best = {p: max(q.rps for q in srv.requests if q.path == p) for p in ("/sentiment", "/ner")}
        gen = max(p.chars_per_s for p in srv.streams)
        rows.append(
            [
                label(name),
                cell("sentiment", best["/sentiment"]),
                cell("sentiment", srv.batched.sentences_per_s),
                cell("ner", best["/ner"]),
                cell("charlm", gen),
            ]
        )
    n = r.bodies.batch_texts
    head = ["server", "/sentiment best req/s", f"/sentiment {n}-text sentences/s", "/ner best req/s"]
    return table([*head, "/generate best chars/s"], rows)


def section(r: Results) -> str:
    size = f"{r.matmul_n}×{r.matmul_n} " if r.matmul_n else ""
    return "\n".join(
        [
            "Median milliseconds per call (onnxruntime session vs PyTorch eager module, same weights, real "
            f"sentences). Ceiling: numpy float32 {size}matmul on all {r.machine.cores} cores measured "
            f"**{r.matmul_gflops:.0f} GFLOP/s**; FLOPs per item are 2 per weight per position from the graph's LSTM, "
            "convolution and dense shapes (an item is one sentence, or one generated character for the char LM), "
            "averaged over the benchmark's sentences.\n",
            model_table(r),
            stream_batching(r),
            padding(r),
            op_profile(r),
            chunk_sizes(r),
            "\nServed throughput as a share of that ceiling:\n",
            served_share(r),
        ]
    )
