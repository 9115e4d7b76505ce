"""NER validation as users meet the tagger: tokens as given, lower-cased, upper-cased, and the same sentences as
raw text through the service's tokenizer, scored on character spans. One implementation for training (torch) and
for a committed artifact (onnxruntime): both pass a function from padded features to tag log-probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from rnntext.encoders import NerEncoder, NerFeatures
from rnntext.tags import Span, TagDecoder, entity_scores, span_scores, spans

LogProbsOf = Callable[[np.ndarray, np.ndarray, np.ndarray], npt.NDArray[np.float32]]  # words, chars, lengths
Casing = Literal["given", "lower", "upper"]
CASINGS: dict[Casing, Callable[[str], str]] = {"given": lambda w: w, "lower": str.lower, "upper": str.upper}
# No space before these tokens and none after the opening ones, as people write (a rough Moses detokenizer).
_ATTACH_LEFT = {".", ",", ":", ";", "!", "?", ")", "]", "}", "%", "'s", "'S", "n't", "N'T", "'"}
_ATTACH_RIGHT = {"(", "[", "{", "$"}


def decode_tags(
    log_probs_of: LogProbsOf,
    encoder: NerEncoder,
    decoder: TagDecoder,
    sentences: Sequence[Sequence[str]],
    batch: int = 128,
) -> list[list[str]]:
    """Tags for tokenized sentences, decoded as the service decodes (constrained Viterbi, CRF scores if any)."""
    order = np.argsort([len(s) for s in sentences], kind="stable")  # little padding
    decoded: list[list[str]] = [[] for _ in sentences]
    for i in range(0, len(order), batch):
        rows = order[i : i + batch]
        features: list[NerFeatures] = [encoder.encode(list(sentences[r])) for r in rows]
        words, chars, lengths = encoder.pad_batch(features)
        paths = decoder.decode_batch(log_probs_of(words, chars, lengths), lengths)
        for r, path in zip(rows, paths, strict=True):
            decoded[r] = [decoder.tags[t] for t in path]
    return decoded


def detokenize(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """CoNLL tokens as a person would type them, with each token's [start, end) in the text."""
    text, offsets = "", []
    for i, token in enumerate(tokens):
        if i and token not in _ATTACH_LEFT and tokens[i - 1] not in _ATTACH_RIGHT:
            text += " "
        offsets.append((len(text), len(text) + len(token)))
        text += token
    return text, offsets


def text_scores(
    log_probs_of: LogProbsOf,
    encoder: NerEncoder,
    decoder: TagDecoder,
    sentences: Sequence[tuple[Sequence[str], Sequence[str]]],
) -> dict[str, dict[str, float]]:
    """Entity scores on character spans, overall and per type: each sentence detokenized, then tokenized by the
    service's tokenizer; an entity counts when its label and exact characters match the gold one's."""
    texts = [detokenize(words) for words, _ in sentences]
    tokenized = [encoder.tokenize(text) for text, _ in texts]
    predicted = decode_tags(log_probs_of, encoder, decoder, [[t.text for t in ts] for ts in tokenized])
    gold_chars, pred_chars = [], []
    for (_, offsets), (_, gold_tags), tokens, pred_tags in zip(texts, sentences, tokenized, predicted, strict=True):
        gold_chars.append({Span(s.label, offsets[s.start][0], offsets[s.end - 1][1]) for s in spans(gold_tags)})
        pred_chars.append({Span(s.label, tokens[s.start].start, tokens[s.end - 1].end) for s in spans(pred_tags)})
    return span_scores(gold_chars, pred_chars)


def variant_scores(
    log_probs_of: LogProbsOf,
    encoder: NerEncoder,
    decoder: TagDecoder,
    sentences: Sequence[tuple[Sequence[str], Sequence[str]]],
    raw_text: bool = True,
) -> dict[str, dict[str, dict[str, float]]]:
    """{variant: {entity type or "overall": scores}} for every casing, and for raw "text" when asked."""
    gold = [list(t) for _, t in sentences]
    result = {}
    for name, change in CASINGS.items():
        cased = [[change(w) for w in words] for words, _ in sentences]
        result[name] = entity_scores(gold, decode_tags(log_probs_of, encoder, decoder, cased))
    if raw_text:
        result["text"] = text_scores(log_probs_of, encoder, decoder, sentences)
    return result


ENTITY_TYPES = ["PER", "LOC", "ORG", "MISC"]
VARIANT_NAMES = {"given": "tokens as given", "lower": "lower-cased", "upper": "upper-cased", "text": "raw text"}


def variant_table(scores: dict[str, dict[str, dict[str, float]]]) -> str:
    """`variant_scores` as a markdown table: F1 per entity type and overall, a row per variant."""
    head = ["| input | PER | LOC | ORG | MISC | overall F1 |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    rows = [
        f"| {VARIANT_NAMES[v]} | "
        + " | ".join(f"{by[t]['f1']:.2f}" if t in by else "-" for t in ENTITY_TYPES)
        + f" | {by['overall']['f1']:.2f} |"
        for v, by in scores.items()
    ]
    return "\n".join(head + rows)
