"""rnntext.tokenize: PTB-style splits and offsets that always point back into the original text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rnntext.tokenize import Token, join_tokens, tokenize, tokenize_words


def texts(s: str) -> list[str]:
    return [t.text for t in tokenize(s)]


def test_ptb_splits() -> None:
    assert texts("I don't like it's") == ["I", "do", "n't", "like", "it", "'s"]
    assert texts("The U.S. paid 1,000 dollars...") == ["The", "U.S.", "paid", "1,000", "dollars", "..."]
    assert texts("well-known O'Neill, (yes)") == ["well-known", "O'Neill", ",", "(", "yes", ")"]


def test_initials_titles_company_suffixes_and_currencies_stay_whole_as_in_conll() -> None:
    """CoNLL-2003 (PTB) keeps "P." in "P. Simmons" whole: split, the name's first token became "." for the tagger."""
    assert texts("Somerset 83 (P. Simmons 4-38)") == ["Somerset", "83", "(", "P.", "Simmons", "4-38", ")"]
    assert texts("Mr. Major met Acme Inc. staff") == ["Mr.", "Major", "met", "Acme", "Inc.", "staff"]
    assert texts("First of Michigan Corp., Detroit") == ["First", "of", "Michigan", "Corp.", ",", "Detroit"]
    assert texts("fell C$ 0.45 to US$101.15") == ["fell", "C$", "0.45", "to", "US$", "101.15"]
    assert texts("s. korean") == ["s.", "korean"]  # any casing
    # A full stop that ends a sentence is still its own token (a one-letter word before the next sentence is not:
    # "an A. Then" reads as an initial).
    assert texts("It was bad, no. It got an A.") == ["It", "was", "bad", ",", "no", ".", "It", "got", "an", "A", "."]
    assert texts("paid $5, Dr. No") == ["paid", "$", "5", ",", "Dr.", "No"]


def test_emoji_and_unknown_characters_are_tokens_with_offsets() -> None:
    text = "great 😀 film👍🏽 \u2603"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == ["great", "😀", "film", "👍", "🏽", "\u2603"]
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert tokens[1] == Token("😀", 6, 7)  # offsets count code points, as Python strings do


def test_empty_and_whitespace_give_no_tokens() -> None:
    assert tokenize("") == []
    assert tokenize(" \t\n ") == []


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_offsets_round_trip_and_cover_every_non_space(text: str) -> None:
    tokens = tokenize(text)
    covered = set()
    previous_end = 0
    for t in tokens:
        assert text[t.start : t.end] == t.text
        assert t.start >= previous_end and t.end > t.start
        previous_end = t.end
        covered.update(range(t.start, t.end))
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Zs", "Cc")), min_size=1), min_size=1))
def test_join_tokens_offsets(words: list[str]) -> None:
    text, tokens = join_tokens(words)
    assert text == " ".join(words)
    assert [t.text for t in tokens] == words
    assert all(text[t.start : t.end] == t.text for t in tokens)


@given(st.text())
def test_words_without_offsets_are_the_same_tokens(text: str) -> None:
    assert tokenize_words(text) == texts(text)


def test_urls_mentions_and_hashtags_are_one_token_each() -> None:
    url = "https://example.com/a/b_(c)?q=1&r=%20x#frag"
    text = f"@BarackObama met #Merkel in Paris: {url}. Mail me at jo.doe+ner@mail.example.org, or www.bbc.co.uk!"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == [
        "@BarackObama",
        "met",
        "#Merkel",
        "in",
        "Paris",
        ":",
        url,
        ".",
        "Mail",
        "me",
        "at",
        "jo.doe+ner@mail.example.org",
        ",",
        "or",
        "www.bbc.co.uk",
        "!",
    ]
    assert all(text[t.start : t.end] == t.text for t in tokens)


def test_a_url_thousands_of_characters_long_is_one_token() -> None:
    url = "https://t.co/" + "aB3-_" * 500
    assert texts(f"read ({url}) now") == ["read", "(", url, ")", "now"]


def test_at_and_hash_inside_words_are_not_mentions() -> None:
    assert texts("C# and a@b") == ["C", "#", "and", "a", "@", "b"]
