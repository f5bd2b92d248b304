"""Phrase cutting (short first phrase for early audio) and voice blend parsing."""

from __future__ import annotations

import pytest

from engines.speech_text import (
    MAX_PHRASE_CHARS,
    MAX_TOKEN_CHARS,
    PhraseStream,
    bound_phonemes,
    bound_phrase,
    parse_blend,
    split_phrases,
)


def test_first_phrase_is_short_then_sentences() -> None:
    text = ("The quick brown fox jumps over the lazy dog near the river bank today. "
            "Then it runs home. And it sleeps, dreaming of rabbits, until morning comes.")
    phrases = split_phrases(text, first_words=6)
    assert phrases[0].text == "The quick brown fox jumps over"
    assert " ".join(p.text for p in phrases).split() == text.split()  # nothing lost, nothing repeated
    assert phrases[-1].pause_after == 0.0
    assert any(p.pause_after == 0.25 for p in phrases)


def test_first_clause_is_used_when_early() -> None:
    phrases = split_phrases("Well, that is a long sentence with many words in it for sure.")
    assert phrases[0].text == "Well,"
    assert phrases[0].pause_after > 0


def test_long_sentences_are_cut_at_clauses() -> None:
    sentence = ", ".join(["this clause has exactly six words"] * 8) + "."
    phrases = split_phrases("Hi. " + sentence)
    assert len(phrases) > 2 and all(len(p.text.split()) <= 28 for p in phrases)


def test_parse_blend() -> None:
    assert parse_blend("a") == [("a", 1.0)]
    assert parse_blend("a+b") == [("a", 0.5), ("b", 0.5)]
    assert parse_blend("a:3+b:1") == [("a", 0.75), ("b", 0.25)]
    with pytest.raises(ValueError):
        parse_blend("a:x+b")


def test_first_cut_prefers_the_start_of_a_phrase() -> None:
    phrases = split_phrases("I think we should probably go to the store today because it is open late.", 4)
    assert phrases[0].text == "I think we should probably go"  # cut before "to", not after "should"


def test_a_tight_first_maximum_keeps_the_first_phrase_short() -> None:
    text = "The quick brown fox jumps over the lazy dog. Then it sleeps."
    assert split_phrases(text, 3)[0].text == "The quick brown fox jumps"  # stretched to cut before "over"
    phrases = split_phrases(text, 3, first_max_words=4)
    assert phrases[0].text == "The quick brown"
    assert " ".join(p.text for p in phrases).split() == text.split()
    clause = split_phrases("Later that evening, the tired fox curled up under an old oak tree.", 3, first_max_words=4)
    assert clause[0].text == "Later that evening,"


# Issue 15: every phrase an engine gets is bounded, whatever the text.
HOSTILE = {
    "url-token": "http" + "a." * 2000,
    "no-spaces": "x" * 4096,
    "comma-run": "$" + ",nine" * 800,
    "one-long-clause": "Doctor " * 1000,
    "digits-as-words": "five " * 4000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_phrase_is_bounded(text: str) -> None:
    phrases = split_phrases(text)
    assert all(len(p.text) <= MAX_PHRASE_CHARS for p in phrases)
    assert all(len(p.text.split()) <= 28 for p in phrases)
    assert all(len(w) <= MAX_TOKEN_CHARS for p in phrases for w in p.text.split())
    # Nothing is lost: the phrases hold every non-space character of the text, in order.
    assert "".join(p.text.replace(" ", "") for p in phrases) == "".join(text.split())


def test_bound_phrase_keeps_short_text_whole_and_cuts_between_words() -> None:
    assert bound_phrase("a short phrase") == ["a short phrase"]
    pieces = bound_phrase(" ".join(f"w{i}" for i in range(70)), max_words=28)
    assert [len(p.split()) for p in pieces] == [28, 28, 14]


def test_bound_phonemes_cuts_after_a_word() -> None:
    phonemes = list("ab cd ef ") * 100
    runs = bound_phonemes(phonemes, 50)
    assert sum(runs, []) == phonemes
    assert all(len(r) <= 50 for r in runs) and all(r[-1] == " " for r in runs[:-1])
    assert bound_phonemes([]) == [] and bound_phonemes(list("abc"), 2) == [["a", "b"], ["c"]]


# --- the same cutter on text that streams in (the voice loop's LLM tokens) ----------------------------------

STREAMED = [
    "The quick brown fox jumps over the lazy dog near the river bank today. Then it runs home. And it sleeps.",
    "Well, that is a long sentence with many words in it for sure.",
    "Hi. " + ", ".join(["this clause has exactly six words"] * 8) + ". Bye now.",
    "I think we should probably go to the store today because it is open late.",
    "Dr. Smith lives on Main St. near the park! He said \"hello.\" (Twice.) Done",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty, twenty-one twenty-two twenty-three twenty-four twenty-five twenty-six twenty-seven, "
    "twenty-eight twenty-nine thirty thirty-one, and more.",
]


@pytest.mark.parametrize("first", [(4, None), (4, 4), (3, 4), (6, None)])
@pytest.mark.parametrize("step", [1, 3, 7, 100])
@pytest.mark.parametrize("text", STREAMED)
def test_streamed_text_is_cut_into_the_same_phrases(text: str, step: int, first: tuple[int, int | None]) -> None:
    assert _streamed(text, step, first) == [p.text for p in split_phrases(text, *first)]


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_streamed_hostile_text_is_cut_into_the_same_bounded_phrases(text: str) -> None:
    assert _streamed(text, 7, (4, 4)) == [p.text for p in split_phrases(text, 4, 4)]


def _streamed(text: str, step: int, first: tuple[int, int | None]) -> list[str]:
    stream = PhraseStream(*first)
    return [p for i in range(0, len(text), step) for p in stream.feed(text[i : i + step])] + stream.flush()


def test_streamed_phrases_leave_as_soon_as_they_are_settled() -> None:
    stream = PhraseStream(4, 4)
    assert stream.feed("Later that evening") == []
    assert stream.feed(", the") == ["Later that evening,"]
    assert stream.feed(" tired fox curled up. Then") == ["the tired fox curled up."]
    assert stream.flush() == ["Then"]
    long = PhraseStream(4, 4)
    assert long.feed("one two three four ") == []  # the fourth word could still end a clause
    assert long.feed("five ") == ["one two three four"]
    clauses = ", ".join(["a clause of five words"] * 7)  # 35 words: more than one phrase may hold
    assert long.feed(f"Then {clauses}") == ["five Then a clause of five words, a clause of five words, a clause of "
                                            "five words, a clause of five words, a clause of five words,"]


def test_abbreviations_do_not_end_sentences() -> None:
    assert [p.text for p in split_phrases("Hello there. Dr. Smith met Mrs. Jones, e.g. today. I play piano. Yes.")] \
        == ["Hello there.", "Dr. Smith met Mrs. Jones, e.g. today.", "I play piano.", "Yes."]
