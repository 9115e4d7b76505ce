"""Realistic request bodies from ../shared/data: SST-2 sentences, CoNLL-2003 sentences joined by spaces, prompts
from Tiny Shakespeare. A fixed seed picks them, so every server gets the same requests in the same order."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path

from service.settings import DEFAULT_ARTIFACTS

DATA = DEFAULT_ARTIFACTS.parent.parent / "shared" / "data"
TEMPERATURE = 0.8  # of every /generate body
FIRST_CHAR_TOKENS = 8  # max_new_tokens of the first-character streams: short, so most of the time is the first one


def sst2_sentences(data: Path = DATA, n: int = 2000, seed: int = 0) -> list[str]:
    lines = (data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    # Whole sentences, not SST's phrases: at least 6 words (the train file mixes in short phrases).
    sentences = [s for s in (line.split("\t")[0].strip() for line in lines) if len(s.split()) >= 6]
    return random.Random(seed).sample(sentences, min(n, len(sentences)))


def conll_sentences(data: Path = DATA, n: int = 2000, seed: int = 0) -> list[str]:
    sentences, words = [], []
    for line in (data / "conll2003" / "valid.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if words:
                sentences.append(" ".join(words))
            words = []
        elif not line.startswith("-DOCSTART-"):
            words.append(line.split()[0])
    if words:
        sentences.append(" ".join(words))
    return random.Random(seed).sample(sentences, min(n, len(sentences)))


def shakespeare_prompts(data: Path = DATA, n: int = 200, seed: int = 0) -> list[str]:
    """Speaker lines ("ROMEO:") with the first line of their speech, as a user would start a generation."""
    lines = (data / "tinyshakespeare" / "train.txt").read_text(encoding="utf-8").splitlines()
    prompts = [f"{a}\n{b}\n" for a, b in itertools.pairwise(lines) if a.endswith(":") and b.strip()]
    return random.Random(seed).sample(prompts, min(n, len(prompts)))


@dataclass(frozen=True)
class Bodies:
    sentiment: list[bytes]
    ner: list[bytes]
    sentiment_batch: list[bytes]  # {"texts": [64 sentences]}
    generate: list[bytes]  # streaming, max_new_tokens each
    first_char: list[bytes]  # streaming, short: time to first character
    sentiment_texts: list[str]
    ner_texts: list[str]
    batch_texts: int
    new_tokens: int


def bodies(data: Path = DATA, batch_texts: int = 64, new_tokens: int = 200) -> Bodies:
    sst, conll = sst2_sentences(data), conll_sentences(data)
    prompts = shakespeare_prompts(data)

    def enc(obj: object) -> bytes:
        return json.dumps(obj).encode()

    def gen(prompt: str, i: int, n: int) -> bytes:
        return enc({"prompt": prompt, "max_new_tokens": n, "temperature": TEMPERATURE, "seed": i, "stream": True})

    return Bodies(
        sentiment=[enc({"text": s}) for s in sst],
        ner=[enc({"text": s}) for s in conll],
        sentiment_batch=[
            enc({"texts": sst[i : i + batch_texts]}) for i in range(0, len(sst) - batch_texts, batch_texts)
        ],
        generate=[gen(p, i, new_tokens) for i, p in enumerate(prompts)],
        first_char=[gen(p, i, FIRST_CHAR_TOKENS) for i, p in enumerate(prompts)],
        sentiment_texts=sst,
        ner_texts=conll,
        batch_texts=batch_texts,
        new_tokens=new_tokens,
    )
