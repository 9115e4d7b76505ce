"""docs/benchmarks.md from bench/results.json: every figure is computed here from the measurements, none typed in."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from bench import tail_report  # issue 18

NAMES = {
    "ours": "ours (LitServe + ORT)",
    "fastapi-torch": "(a) FastAPI + torch",
    "litserve-torch": "(b) LitServe + torch",
}
BASELINES = ("fastapi-torch", "litserve-torch")


def _f(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b or math.isnan(a) or math.isnan(b):
        return "–"
    return f"{a / b:.2f}×"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


Getter = Callable[[dict[str, Any]], float | None]


def figures(r: dict[str, Any]) -> list[tuple[str, str, Getter, int]]:
    """(figure, better, getter on one server's results, digits)."""
    out: list[tuple[str, str, Getter, int]] = []
    for path in ("/sentiment", "/ner"):
        for c in r["plan"]["clients"]:

            def pt(s: dict[str, Any], path: str = path, c: int = c) -> dict[str, Any]:
                return next(p for p in s["requests"] if p["path"] == path and p["clients"] == c)

            who = f"{c} client" + ("s" if c > 1 else "")
            out.append((f"{path} {who}: req/s", "higher", lambda s, pt=pt: pt(s)["rps"], 0))
            for q in ("p50", "p95", "p99"):
                out.append((f"{path} {who}: {q} ms", "lower", lambda s, pt=pt, q=q: pt(s)[f"{q}_ms"], 1))
    n = r["bodies"]["batch_texts"]
    bc = r["plan"]["batch_clients"]
    out.append(
        (
            f"/sentiment {n}-text requests, {bc} clients: sentences/s",
            "higher",
            lambda s: s["batched"]["sentences_per_s"],
            0,
        )
    )
    out.append((f"/sentiment {n}-text requests: p99 ms", "lower", lambda s: s["batched"]["p99_ms"], 1))
    out.append(
        ("/generate first character, lone client: p50 ms", "lower", lambda s: s["first_char"]["first_char_p50_ms"], 1)
    )
    out.append(
        ("/generate first character, lone client: p95 ms", "lower", lambda s: s["first_char"]["first_char_p95_ms"], 1)
    )
    for k in r["plan"]["streams"]:

        def st(s: dict[str, Any], k: int = k) -> dict[str, Any]:
            return next(p for p in s["streams"] if p["streams"] == k)

        label = "one stream: chars/s" if k == 1 else f"{k} streams: total chars/s"
        out.append((f"/generate {label}", "higher", lambda s, st=st: st(s)["chars_per_s"], 0))
        if k > 1:
            out.append(
                (f"/generate {k} streams: first char p50 ms", "lower", lambda s, st=st: st(s)["first_char_p50_ms"], 0)
            )
    out.append(("start-up to ready /health, s", "lower", lambda s: s["startup_s"], 2))
    out.append(("serving processes", "–", lambda s: s["memory_loaded"]["processes"], 0))
    out.append(("memory after the load, PSS MB (all processes)", "lower", lambda s: s["memory_loaded"]["pss_mb"], 0))
    out.append(("memory after the load, RSS sum MB", "lower", lambda s: s["memory_loaded"]["rss_mb"], 0))
    return out


def side_by_side(r: dict[str, Any]) -> str:
    servers = r["servers"]
    ours = servers.get("ours")
    present = [b for b in BASELINES if b in servers]
    head = ["figure", "better", NAMES["ours"]]
    for b in present:
        head += [NAMES[b], f"ours ÷ {NAMES[b][:3]}"]
    rows = []
    for name, better, get, digits in figures(r):
        row = [name, better, _f(get(ours), digits) if ours else "–"]
        for b in present:
            theirs = get(servers[b])
            row += [_f(theirs, digits), _ratio(get(ours), theirs) if ours and better != "–" else "–"]
        rows.append(row)
    return _table(head, rows)


def loadgen_share(r: dict[str, Any]) -> str:
    points = [
        (name, p)
        for name, s in r["servers"].items()
        for p in [*s["requests"], s["batched"], s["first_char"], *s["streams"]]
    ]
    if not points:
        return ""
    name, worst = max(points, key=lambda x: x[1]["loadgen_cores"])
    cores = r["machine"]["cores"] or 1
    where = worst.get("path", "/generate") + f" with {worst.get('clients', worst.get('streams'))} clients"
    return (
        f"\nThe load generator's own CPU: at most {worst['loadgen_cores']:.2f} cores "
        f"({100 * worst['loadgen_cores'] / cores:.0f} % of the machine), at {where} against {NAMES[name]}; "
        "every point's figure is in the detail tables.\n"
    )


def targets(r: dict[str, Any]) -> str:
    s = r["servers"]
    if "ours" not in s:
        return "(ours was not measured)"
    o = s["ours"]
    a, b = s.get("fastapi-torch"), s.get("litserve-torch")
    rows: list[list[str]] = []

    def check(name: str, measured: str, ok: bool | None) -> None:
        rows.append([name, measured, "–" if ok is None else ("**holds**" if ok else "**misses**")])

    def pt(srv: dict[str, Any], path: str, c: int) -> dict[str, Any]:
        return next(p for p in srv["requests"] if p["path"] == path and p["clients"] == c)

    def verdict(
        point: str, versus: str, theirs: str, mine: float, other: float, latency: bool = False, digits: int = 2
    ) -> tuple[float, str]:
        """The head-to-head median of ours at `point` ÷ `theirs` at `versus` where those rounds exist, else the
        side-by-side table's one figure each; `latency` compares p99s instead of rates."""
        x, shown = mine / other, ".1f" if latency else ".0f"
        once = f"{mine:{shown}} vs {other:{shown}}{' ms' if latency else ''} = {x:.{digits}f}×"
        duel = duel_ratios(r, point, versus, theirs, "p99_ms" if latency else "points")
        if not duel:
            return x, once
        x = statistics.median(duel)
        return x, f"head to head, median of {len(duel)} rounds {x:.{digits}f}× ({_list(duel, digits)}); table: {once}"

    for path in ("/sentiment", "/ner"):
        mine, point = pt(o, path, 32), f"{path} x32"
        if a:
            th = pt(a, path, 32)
            x, text = verdict(point, point, "fastapi-torch", mine["rps"], th["rps"])
            check(f"{path} 32 clients: req/s >= 2× (a)", text, x >= 2)
            y, text = verdict(point, point, "fastapi-torch", mine["p99_ms"], th["p99_ms"], latency=True)
            check(f"{path} 32 clients: p99 <= ½ (a)", text, y <= 0.5)
        if b:
            th = pt(b, path, 32)
            x, text = verdict(point, point, "litserve-torch", mine["rps"], th["rps"])
            check(f"{path} 32 clients: req/s >= 1.2× (b)", text, x >= 1.2)
    single = pt(o, "/sentiment", 32)["rps"]
    sent = o["batched"]["sentences_per_s"]
    x, text = verdict("/sentiment 64 texts x8", "/sentiment x32", "ours", sent, single, digits=1)
    check("64-text requests: sentences/s >= 10× single-text req/s (32 clients)", text, x >= 10)
    one = next(p for p in o["streams"] if p["streams"] == 1)["chars_per_s"]
    many = next(p for p in o["streams"] if p["streams"] == 16)["chars_per_s"]
    x, text = verdict("/generate 16 streams", "/generate 1 stream", "ours", many, one)
    check("/generate 16 streams: total chars/s >= 4× one stream", text, x >= 4)
    if a:
        theirs = next(p for p in a["streams"] if p["streams"] == 16)["chars_per_s"]
        check(
            "/generate 16 streams: total chars/s >= 10× (a)",
            f"{many:.0f} vs {theirs:.0f} = {many / theirs:.2f}×",
            many / theirs >= 10,
        )
    fc = o["first_char"]
    check(
        "first character, lone client < 50 ms (p50; p95 shown)",
        f"p50 {fc['first_char_p50_ms']:.1f} ms, p95 {fc['first_char_p95_ms']:.1f} ms",
        fc["first_char_p50_ms"] < 50,
    )
    check("start-up < 5 s", f"{o['startup_s']:.2f} s", o["startup_s"] < 5)
    mem = o["memory_loaded"]
    check(
        "all serving processes < 600 MB (PSS; RSS sum shown)",
        f"PSS {mem['pss_mb']:.0f} MB, RSS sum {mem['rss_mb']:.0f} MB, {mem['processes']} processes",
        mem["pss_mb"] < 600,
    )
    no_torch = (
        not o["memory_loaded"]["torch_loaded"] and not o["memory_ready"]["torch_loaded"] and not o["torch_imported"]
    )
    check(
        "no torch in the serving processes",
        "no libtorch mapped, /info: torch_imported false"
        if no_torch
        else f"torch in {o['memory_loaded']['torch_loaded']} {o['torch_imported']}",
        no_torch,
    )
    disturbed = [
        f"{NAMES[n]} {p.get('path', '/generate')} x{p.get('clients', p.get('streams'))} ({p['other_cores']:.2f})"
        for n, srv in s.items()
        for p in [*srv["requests"], srv["batched"], *srv["streams"]]
        if p.get("other_cores", 0.0) > 0.2
    ]
    note = ""
    if disturbed:
        note = (
            "\n\n**Disturbed points:** other processes used more than 0.2 cores during "
            + ", ".join(disturbed)
            + ". Their figures (and ratios built on them) are not reliable in this run."
        )
    return _table(["target", "measured", "verdict"], rows) + batch_ceiling(r) + note


def batch_ceiling(r: dict[str, Any]) -> str:
    """The 64-text target as a CPU budget: 10x ours' single-text rate (the head-to-head median, else the table's)
    leaves each 64-text request so many milliseconds of the machine's cores; the model alone, in its most efficient form
    (1 thread, sorted by length, the padding table), and the tokenizer take their share of it before any HTTP."""
    padding = next((p for p in r.get("padding", []) if p["task"] == "sentiment"), None)
    if padding is None or "encode_ms" not in padding or "ours" not in r["servers"]:
        return ""
    rounds = r.get("head_to_head", {}).get("points", {}).get("/sentiment x32", {}).get("ours", [])
    table = next(p for p in r["servers"]["ours"]["requests"] if p["path"] == "/sentiment" and p["clients"] == 32)
    single = statistics.median(rounds) if rounds else table["rps"]
    n, cores = padding["sentences"], r["machine"]["cores"]
    budget = cores * 1000 * n / (10 * single)  # CPU ms per n-text request at 10x the single-text rate
    model, encode = padding["sorted_chunks_ms"], padding["encode_ms"]
    left = budget - model - encode
    rest = (
        f"leaving {left:.1f} ms for HTTP, JSON, the pipes and the answer"
        if left > 0
        else f"{-left:.1f} ms over the budget before any HTTP, JSON or pipe"
    )
    return (
        f"\n\nThe 64-text target as a CPU budget: 10× ours' single-text rate ({single:,.0f} req/s at 32 clients"
        f"{', head-to-head median' if rounds else ''}) is {10 * single:,.0f} sentences/s, i.e. {budget:.1f} ms of "
        f"the {cores} cores per {n}-text request. The model alone takes {model:.1f} ms of it for the benchmark's {n} "
        f'sentences (1 thread, sorted by length: its most efficient form, "Padding" below) and turning the '
        f"texts into ids {encode:.1f} ms: {rest}."
    )


def duel_ratios(r: dict[str, Any], point: str, versus: str, theirs: str, figure: str = "points") -> list[float]:
    """Per head-to-head round: ours at `point` ÷ `theirs` at `versus` (measured within the same round); `figure`
    "points" compares rates, "p99_ms" latencies."""
    h = r.get("head_to_head")
    if not h or figure not in h or point not in h[figure] or versus not in h[figure]:
        return []
    mine, other = h[figure][point].get("ours", []), h[figure][versus].get(theirs, [])
    return [m / t for m, t in zip(mine, other, strict=False) if t]


def _list(xs: list[float], digits: int = 2) -> str:
    return ", ".join(f"{x:.{digits}f}" for x in xs)


def head_to_head(r: dict[str, Any]) -> str:
    h = r.get("head_to_head")
    if not h:
        return "(not run: `--rounds=0`, or only one server)"
    rows = []
    for name, by_kind in h["points"].items():
        unit = "sentences/s" if "texts" in name else "req/s"
        for kind in (k for k in by_kind if k != "ours"):
            for figure, label in (("points", unit), ("p99_ms", "p99 ms")):
                ratios = duel_ratios(r, name, name, kind, figure)
                if not ratios:
                    continue
                mine, theirs = h[figure][name]["ours"], h[figure][name][kind]
                rows.append(
                    [
                        f"{name}: {label}",
                        NAMES[kind],
                        ", ".join(_f(x, 1 if figure == "p99_ms" else 0) for x in mine),
                        ", ".join(_f(x, 1 if figure == "p99_ms" else 0) for x in theirs),
                        _list(ratios),
                        f"**{statistics.median(ratios):.2f}×**",
                    ]
                )
    single = duel_ratios(r, "/sentiment 64 texts x8", "/sentiment x32", "ours")
    batched = ", ".join(_f(x) for x in h["points"].get("/sentiment 64 texts x8", {}).get("ours", []))
    streams = duel_ratios(r, "/generate 16 streams", "/generate 1 stream", "ours")
    many = ", ".join(_f(x) for x in h["points"].get("/generate 16 streams", {}).get("ours", []))
    return (
        _table(["point", "versus", "ours, each round", "theirs, each round", "ours ÷ theirs", "median"], rows)
        + f"\n\nThe servers run side by side; each round measures every point on each of them in turn, "
        f"{h['seconds']:.1f} s each ({h['rounds']} rounds). Other processes used at most "
        f"{h['max_other_cores']:.2f} cores during a point. Ours, 64-text requests at 8 clients: {batched} "
        f"sentences/s; ÷ single-text req/s at 32 clients in the same round: {_list(single, 1)}. Ours, /generate 16 "
        f"streams: {many} chars/s; ÷ one stream in the same round: {_list(streams)}."
    )


def model_table(r: dict[str, Any]) -> str:
    gf = r["matmul_gflops"]
    rows = []
    for m in r["model_only"]:
        best = min([*m["ort_ms"].values(), *m["torch_ms"].values()])
        items = m["batch"] / (best / 1000)
        ceiling = gf * 1e9 / m["flops_per_item"]
        rows.append(
            [m["task"], str(m["batch"])]
            + [_f(v, 2) for v in m["ort_ms"].values()]
            + [_f(v, 2) for v in m["torch_ms"].values()]
            + [f"{m['flops_per_item'] / 1e6:.1f}", _f(items), _f(ceiling), f"{100 * items / ceiling:.1f} %"]
        )
    threads = list(r["model_only"][0]["ort_ms"])
    head = ["model", "batch"] + [f"ORT {t} thr ms" for t in threads] + [f"torch {t} thr ms" for t in threads]
    head += ["MFLOP / item", "best items/s", "ceiling items/s", "share"]
    return _table(head, rows)


def stream_batching(r: dict[str, Any]) -> str:
    rows = {m["batch"]: m for m in r["model_only"] if m["task"] == "charlm"}
    if 1 not in rows or 32 not in rows:
        return ""
    one = min(rows[1]["ort_ms"].values())
    many = min(rows[32]["ort_ms"].values())
    return (
        f"\nChar LM, onnxruntime: one step for 32 streams takes {many:.2f} ms, 32 single steps {32 * one:.2f} ms: "
        f"stepping concurrent streams together would make {32 * one / many:.1f}× the characters per core.\n"
    )


def padding(r: dict[str, Any]) -> str:
    rows = [
        [
            p["task"],
            f"{p['sentences']} (mean {p['mean_length']:.1f}, max {p['max_length']} tokens)",
            _f(p["padded_ms"], 1),
            _f(p["singles_ms"], 1),
            f"{_f(p['sorted_chunks_ms'], 1)} ({p['chunk']} per call)",
            f"{p['padded_ms'] / p['sorted_chunks_ms']:.1f}×",
            _f(p["encode_ms"], 2) if "encode_ms" in p else "–",
        ]
        for p in r.get("padding", [])
    ]
    if not rows:
        return ""
    head = [
        "model",
        "real sentences",
        "one padded call ms",
        "one call each ms",
        "sorted by length ms",
        "padded ÷ sorted",
        "texts -> ids ms",
    ]
    intro = (
        "\nPadding, onnxruntime 1 thread: the same sentences in one call padded to the longest, one call each, and "
        "sorted by length in small calls. A padded batch costs about what its padded steps would cost. The last "
        "column is the worker's Python before the model: tokenizing the sentences and padding their ids:\n\n"
    )
    return intro + _table(head, rows) + "\n"


def chunk_sizes(r: dict[str, Any]) -> str:
    from bench.model_only import SERVING_CHUNKS as in_use

    study = r.get("chunks", [])
    if not study:
        return ""
    sizes = list(study[0]["ms"])
    rows = []
    for p in study:
        best = min(p["ms"], key=lambda c: p["ms"][c])
        rows.append(
            [
                p["task"],
                str(p["sentences"]),
                *[f"**{_f(v, 2)}**" if c == best else _f(v, 2) for c, v in p["ms"].items()],
                str(in_use[p["task"]]),
            ]
        )
    intro = (
        "\n### Chunk size\n\nA large /sentiment or /ner batch runs as length-sorted chunks on 2 threads "
        "(`OnnxModel.output_by_length`): median ms per batch for each chunk size, the sizes alternating within each "
        "of 25 rounds (best in bold):\n\n"
    )
    head = ["model", "sentences", *[f"chunks of {c} ms" for c in sizes], "chunk in use"]
    return intro + _table(head, rows) + "\n"


def op_profile(r: dict[str, Any]) -> str:
    rows = [
        [
            p["task"],
            str(p["chunk"]),
            _f(p["us_per_call"]),
            ", ".join(f"{o['op']} {o['share']:.0%} ({_f(o['us_per_call'])} µs)" for o in p["ops"]),
        ]
        for p in r.get("op_profile", [])
    ]
    if not rows:
        return ""
    intro = (
        "\nWhere a serving call's time goes (onnxruntime's profiler, 1 thread, the same sentences in length-sorted "
        "calls of the size shown, the service's own at the time of the run; the profiler adds time to every node, "
        "the shares are what to read):\n\n"
    )
    return (
        intro
        + _table(["model", "sentences per call", "µs per call", "largest operators: share (µs per call)"], rows)
        + "\n"
    )


def served_share(r: dict[str, Any]) -> str:
    gf = r["matmul_gflops"] * 1e9
    flops = {m["task"]: m["flops_per_item"] for m in r["model_only"] if m["batch"] == 1}
    rows = []
    for name, srv in r["servers"].items():
        best = {p: max(q["rps"] for q in srv["requests"] if q["path"] == p) for p in ("/sentiment", "/ner")}
        gen = max(p["chars_per_s"] for p in srv["streams"])
        sent = srv["batched"]["sentences_per_s"]
        rows.append(
            [
                NAMES[name],
                f"{_f(best['/sentiment'])} ({100 * best['/sentiment'] * flops['sentiment'] / gf:.1f} %)",
                f"{_f(sent)} ({100 * sent * flops['sentiment'] / gf:.1f} %)",
                f"{_f(best['/ner'])} ({100 * best['/ner'] * flops['ner'] / gf:.1f} %)",
                f"{_f(gen)} ({100 * gen * flops['charlm'] / gf:.1f} %)",
            ]
        )
    head = [
        "server",
        "/sentiment best req/s",
        "/sentiment 64-text sentences/s",
        "/ner best req/s",
        "/generate best chars/s",
    ]
    return _table(head, rows)


def detail(r: dict[str, Any], name: str) -> str:
    s = r["servers"][name]
    rows = []
    for p in [*s["requests"], {**s["batched"], "path": f"/sentiment ({r['bodies']['batch_texts']} texts)"}]:
        batch = f"{p['mean_batch']:.1f} / {p['model_ms_per_call']:.2f}" if "mean_batch" in p else "–"
        rows.append(
            [
                p["path"],
                str(p["clients"]),
                _f(p["rps"]),
                _f(p["p50_ms"], 1),
                _f(p["p95_ms"], 1),
                _f(p["p99_ms"], 1),
                str(p["errors"]),
                f"{p['loadgen_cores']:.2f}",
                f"{p['server_cores']:.2f}",
                f"{p.get('busiest_cores', float('nan')):.2f}",
                f"{p.get('other_cores', float('nan')):.2f}",
                batch,
            ]
        )
    for p in [{**s["first_char"], "label": "first char (8-char streams)"}, *s["streams"]]:
        rows.append(
            [
                p.get("label", "/generate streams"),
                str(p["streams"]),
                f"{_f(p['chars_per_s'])} chars/s",
                _f(p["first_char_p50_ms"], 1),
                _f(p["first_char_p95_ms"], 1),
                "–",
                str(p["errors"]),
                f"{p['loadgen_cores']:.2f}",
                f"{p['server_cores']:.2f}",
                f"{p.get('busiest_cores', float('nan')):.2f}",
                f"{p.get('other_cores', float('nan')):.2f}",
                "–",
            ]
        )
    head = ["endpoint", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "load gen cores", "server cores"]
    head += ["busiest process cores", "other processes cores", "requests per model call / model ms per call"]
    return _table(head, rows)


def processes(s: dict[str, Any]) -> str:
    rows = [
        [str(p["pid"]), p["role"], f"`{p['cmd'][:70]}`", _f(p["pss_mb"]), _f(p["rss_mb"]), str(p["threads"])]
        for p in s.get("memory_processes", [])
    ]
    if not rows:
        return ""
    return "\nProcesses after the load:\n\n" + _table(["pid", "role", "command", "PSS MB", "RSS MB", "threads"], rows)


def sweep(r: dict[str, Any]) -> str:
    if not r.get("sweep"):
        return "(not run: `--no-sweep`)"
    rows = []
    base = r["sweep"][0]

    def rounds(point: dict[str, Any], key: str) -> str:
        values = point.get(f"{key}_rounds", [point[key]])
        return f"{_f(point[key])} ({', '.join(_f(v) for v in values)})"

    for p in r["sweep"]:
        env = ", ".join(f"{k}={v}" for k, v in p["env"].items()) or "defaults"
        other = max(p[k].get("other_cores", 0.0) for k in ("sentiment1", "sentiment32", "ner32", "generate4"))
        rows.append(
            [
                env,
                f"{p['startup_s']:.2f}",
                _f(p["sentiment1"]["p50_ms"], 2),
                f"{rounds(p['sentiment32'], 'rps')} / {_f(p['sentiment32']['p99_ms'], 1)}",
                f"{rounds(p['ner32'], 'rps')} / {_f(p['ner32']['p99_ms'], 1)}",
                rounds(p["generate4"], "chars_per_s"),
                _f(p["memory"]["pss_mb"]),
                _ratio(score(p), score(base)),
                f"{other:.2f}",
            ]
        )
    head = ["settings", "start-up s", "/sentiment 1 client p50 ms", "/sentiment 32: req/s (rounds) / p99 ms"]
    head += ["/ner 32: req/s (rounds) / p99 ms", "/generate 4 streams chars/s (rounds)", "PSS MB", "score vs defaults"]
    head += ["other processes' cores (max of the points)"]
    best = max(r["sweep"], key=score)
    pick = ", ".join(f"{k}={v}" for k, v in best["env"].items()) or "the defaults"
    point = base["sentiment32"]
    note = (
        f"\n\nAll rows' servers run side by side; each point is measured on every row in turn, "
        f"{point.get('rounds', 1)} rounds of {point['seconds']:.1f} s, and the table shows the median (each round in "
        "brackets: their spread is this machine's noise). Score: the geometric mean of /sentiment and /ner req/s at "
        "32 clients and /generate chars/s at 4 streams, relative to the defaults. Best in this run: "
        f"**{pick}**."
    )
    return _table(head, rows) + note


def score(p: dict[str, Any]) -> float:
    xs = [p["sentiment32"]["rps"], p["ner32"]["rps"], p["generate4"]["chars_per_s"]]
    return math.prod(max(x, 1e-9) for x in xs) ** (1 / len(xs))


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    busy = r.get("busy_before") or []
    warn = (
        ("\n> **Other processes were busy during this run; the figures are low:** " + "; ".join(busy) + "\n")
        if busy
        else ""
    )
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    other = r.get("interference")
    if other:
        warn += (
            f"\nOther processes (not the benchmark or its servers) used {other['mean_cores']:.2f} cores on average "
            f"during the run, at most {other['max_cores']:.2f} in a 2-second sample.\n"
        )
    parts = [
        "# Benchmarks\n",
        "<!-- Generated by `make bench` (bench/run.py, bench/report.py) from bench/results.json. "
        "Do not edit by hand. -->\n",
        f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['isa'])}), {m['memory_gb']} GB, {m['os']}; "
        f"Python {m['python']}; {pk}. Commit {m['commit']}, {m['date']}, "
        f"the whole run took {r['duration_s'] / 60:.1f} min"
        + (" (" + ", ".join(f"{k} {v:.0f} s" for k, v in r.get("phases", {}).items()) + ")" if r.get("phases") else "")
        + ".\n",
        f"Command: `{r['command']}`\n{warn}",
        "Servers, all started by the benchmark on 127.0.0.1 with the committed artifacts and the same trained weights "
        "(the PyTorch baselines load the ONNX initializers back into the training modules, `bench/torch_from_onnx.py`, "
        "equal to onnxruntime within 1e-4 in `tests/test_bench.py`):\n",
        "- **ours**: `python -m service.server` with its default settings (LitServe, onnxruntime, dynamic batching);",
        "- **(a)** `bench/baseline_fastapi.py`: FastAPI + uvicorn + PyTorch eager in one process, no batching, "
        "plain `def` "
        "routes (FastAPI's thread pool), torch's default threads; what a user writes by hand;",
        "- **(b)** `bench/baseline_litserve_torch.py`: our server unchanged except PyTorch eager instead of "
        "onnxruntime "
        "in each worker (same routes, batching, workers and threads per worker).\n",
        "## Side by side\n",
        "Ratios are ours ÷ theirs (above 1 is better for ours where higher is better, below 1 where lower is "
        "better).\n",
        side_by_side(r),
        loadgen_share(r),
        "\n## Targets\n",
        "Verdicts on the ratios at 32 clients and on 64-text vs single-text use the head-to-head rounds below (median "
        "of the rounds); the others use the side-by-side table.\n",
        targets(r),
        "\n## Head to head: the servers side by side, alternating\n",
        head_to_head(r),
        "\n## Model only, in process\n",
        f"Median milliseconds per call (onnxruntime session vs PyTorch eager module, same weights, real sentences). "
        f"Ceiling: numpy float32 2048×2048 matmul on all cores measured **{r['matmul_gflops']:.0f} GFLOP/s**; "
        "FLOPs per "
        "item are 2 per weight per position from the graph's LSTM, convolution and dense shapes (an item is one "
        "sentence, or one generated character for the char LM), averaged over the benchmark's sentences.\n",
        model_table(r),
        stream_batching(r),
        padding(r),
        op_profile(r),
        chunk_sizes(r),
        "\nServed throughput as a share of that ceiling:\n",
        served_share(r),
    ]
    if r.get("tail"):  # --- issue 18: baseline (c), the tail and the timeline (bench/tail_report.py) ---
        parts.append(tail_report.section(r["tail"]))
    for name in r["servers"]:
        s = r["servers"][name]
        mem = s["memory_loaded"]
        parts += [
            f"\n## Detail: {NAMES[name]}\n",
            f"Ready in {s['startup_s']:.2f} s. After the load: {mem['processes']} processes, "
            f"PSS {mem['pss_mb']:.0f} MB, "
            f"RSS sum {mem['rss_mb']:.0f} MB; processes with libtorch mapped: {len(mem['torch_loaded'])}.\n",
            detail(r, name),
            processes(s),
        ]
    parts += [
        "\n## Settings sweep (ours)\n",
        "Each row is a server with the default settings plus the variables shown; the same load for each.\n",
        sweep(r),
        "\n## Reading the numbers\n",
        READING,
        "\n## How it is measured\n",
        METHOD,
    ]
    return "\n".join(parts) + "\n"


READING = """\
- Dynamic batching in LitServe 0.2.19 (`collate_requests`) waits up to `batch_timeout` for `max_batch_size`
  requests before it calls the model: a lone request always pays the whole timeout, and so does every batch while
  fewer clients are in flight than `max_batch_size`. "requests per model call" above shows the batches formed.
- Everything of one request except the model call is Python in some process: JSON and pydantic in the HTTP
  process, tokenization (`decode_request`), padding and the response as JSON bytes (`encode_response`) in the
  worker, and a pipe each way (request pickled to the worker, JSON back; ours and (b) alike; LitServe's default
  would use manager queues, a round trip through a third process per message). On 2
  cores the "busiest process cores" column shows which process saturates first (1.00 = a full core); the model's
  own share is "model ms per call" × calls.
- /generate (ours): continuous batching. The worker advances every running stream by one character per model
  call (litserve_ext/generate_loop.py), so concurrent streams share each step; a prompt arriving while others run is
  read as rows of those steps. The baselines generate one stream at a time per worker. Characters travel in
  pieces grouped by `RNNSERVE_STREAM_INTERVAL` (worker -> queue -> HTTP process -> one SSE event). A lone client's
  prompt is read in one call before its first character, so time to first character grows with the prompt's
  length (the benchmark's prompts are a speaker line and the first line of the speech).
- The model-only table is the runtime alone; the line under it compares one char LM step for 32 streams with
  32 single steps, which is what stepping concurrent streams together gains at the model.
"""

METHOD = """\
- Load: `bench/loadgen.py`, closed loop: N clients, each on its own keep-alive HTTP/1.1 connection (raw asyncio
  streams with uvloop, pre-encoded bodies), sends its next request when the previous answer arrived. Each point
  runs a warm-up (not recorded) and then a fixed window; only requests that start and end inside it count.
  Latency is request written -> full response read. The load generator runs on the same 2 cores: its own CPU
  ("load gen cores", 1.00 = one full core) and the serving processes' CPU (from /proc) are shown per point.
- Bodies: SST-2 training sentences of 6+ words for /sentiment (`{"text": ...}`), CoNLL-2003 validation sentences
  joined by spaces for /ner, 64 SST-2 sentences per `{"texts": [...]}` request, Tiny Shakespeare speaker lines as
  /generate prompts (200 new characters, temperature 0.8, `"stream": true`, Server-Sent Events).
- /generate: characters count when their event arrives inside the window; first character = request written ->
  first event with text, from a lone client streaming 8-character generations back to back.
- Start-up: process start -> first 200 from /health (polled every 20 ms). Memory: /proc/<pid>/smaps_rollup of the
  server and all its descendants after the load; PSS splits shared pages between processes (the honest total),
  the RSS sum counts shared libraries once per process. torch: libtorch in /proc/<pid>/maps, and /info.
"""
