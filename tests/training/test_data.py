"""Readers: the real files parse to the documented counts; malformed input names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data import DataFormatError, read_conll, read_labeled_tsv, read_lines, sst_sentence_split


def test_real_files_have_the_documented_counts(data_dir: Path) -> None:
    assert len(read_labeled_tsv(data_dir / "sst2" / "train.tsv")) == 67_349
    conll = read_conll(data_dir / "conll2003" / "train.txt")
    assert len(conll) == 14_041
    assert sum(len(s.words) for s in conll) == 203_621
    assert conll[0].words[:3] == ["EU", "rejects", "German"] and conll[0].tags[:3] == ["B-ORG", "O", "B-MISC"]


def test_tsv_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("sentence\tlabel\ngood film \t1\nno label here\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.tsv:3: expected 2 tab-separated columns"):
        read_labeled_tsv(path)
    path.write_text("sentence\tlabel\ngood film \t7\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.tsv:2: label must be an integer in \[0, 2\)"):
        read_labeled_tsv(path)


def test_conll_skips_docstart_converts_iob1_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "iob1.txt"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nPeter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\nParis NNP I-NP I-LOC\n\n"
        "EU NNP I-NP I-ORG\n",
        encoding="utf-8",
    )
    sentences = read_conll(path)
    assert [s.tags for s in sentences] == [["B-PER", "I-PER", "B-LOC"], ["B-ORG"]]
    path.write_text("EU NNP I-NP B-ORG\nrejects VBZ O\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"iob1\.txt:2: expected 4 columns"):
        read_conll(path)
    path.write_text("EU NNP I-NP X-ORG\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"iob1\.txt:1: tag 'X-ORG'"):
        read_conll(path)


def test_read_lines_reads_gzip(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "u.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("first review\n\nsecond review\nthird\n")
    assert list(read_lines(path, limit=3)) == ["first review", "second review"]


def test_sst_split_holds_out_whole_sentences_and_their_phrases() -> None:
    from training.data import LabeledText

    rows = [
        LabeledText(t, 1)
        for t in [
            "a gripping , funny film",
            "gripping",
            "funny film",
            "a dull , lifeless mess",
            "lifeless mess",
            "dull",
            "an honest , moving story",
            "moving story",
        ]
    ]
    train, valid = sst_sentence_split(rows, fraction=0.34, seed=0)
    assert valid and all(
        v.text in {"a gripping , funny film", "a dull , lifeless mess", "an honest , moving story"} for v in valid
    )
    for v in valid:  # nothing of a held-out sentence is trained on
        assert not any(f" {t.text} " in f" {v.text} " for t in train)
