"""Phrase cutting (short first phrase for early audio) and voice blend parsing."""

from __future__ import annotations

import pytest

from engines.speech_text import parse_blend, split_phrases


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
