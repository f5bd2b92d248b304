"""Text hygiene: what an LLM writes becomes what a person would say."""

from __future__ import annotations

import time

import pytest

from api.speech.text_hygiene import (
    ReplyPhrases,
    ThinkFilter,
    clean_for_speech,
    number_words,
    ordinal_words,
    spoken_cost,
    spoken_transcript,
    year_words,
)
from tests.support.hostile import SPEECH_PROBES


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("<think>plan the answer</think>Sure thing.", "Sure thing."),
        ("<think>never closed, still thinking", ""),
        ("**Bold** and _italic_ and `code`.", "Bold and italic and."),
        ("# Title\n- first item\n- second item", "Title. first item. second item."),
        ("Run this:\n```python\nprint('hi')\n```\nDone.", "Run this: Done."),
        ("See [the docs](https://example.com/docs) now.", "See the docs now."),
        ("Visit https://www.example.com/a?b=1 today.", "Visit example.com today."),
        ("Great job 🎉👍🏽!", "Great job!"),
        ("It costs $5.20.", "It costs five dollars and twenty cents."),
        ("Meet at 3:30 pm.", "Meet at three thirty PM."),
        ("On 2024-05-01 we ship.", "On May first, twenty twenty-four we ship."),
        ("Dr. Smith, e.g. the 21st guest, got 50% of 1,250.",
         "Doctor Smith, for example the twenty-first guest, got fifty percent of one thousand two hundred fifty."),
        ("Pi is 3.14 and it ran 5 km in 1999.",
         "Pi is three point one four and it ran five kilometers in nineteen ninety-nine."),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "a, b. one, two."),
        ("It is 25°C → warm.", "It is twenty-five degrees Celsius, warm."),
    ],
)
def test_clean_for_speech(raw: str, spoken: str) -> None:
    assert clean_for_speech(raw) == spoken


def test_tags_survive_hygiene_in_canonical_form() -> None:
    assert clean_for_speech("Ha <laugh> that is *sighs* fine [smiles].") == "Ha [laugh] that is [sigh] fine [smiles]."


@pytest.mark.parametrize(("n", "words"), [(0, "zero"), (13, "thirteen"), (45, "forty-five"), (101, "one hundred one"),
                                          (2_000_019, "two million nineteen")])
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


def test_ordinals_and_years() -> None:
    assert [ordinal_words(n) for n in (1, 2, 3, 12, 20, 42)] == [
        "first", "second", "third", "twelfth", "twentieth", "forty-second"]
    assert [year_words(y) for y in (1905, 2000, 2007, 2024, 1800)] == [
        "nineteen oh five", "two thousand", "two thousand seven", "twenty twenty-four", "eighteen hundred"]


def test_inline_code_is_not_read_out() -> None:
    assert clean_for_speech("Run `rm -rf /tmp/x` to clean up.") == "Run to clean up."


def test_long_digit_runs_are_read_digit_by_digit() -> None:
    assert clean_for_speech("Call 1234567890123456789.") == (
        "Call one two three four five six seven eight nine zero one two three four five six seven eight nine."
    )
    assert clean_for_speech("It is 123456789012345.") .startswith("It is one hundred twenty-three trillion")


# Issue 15: hygiene is linear in its input; several probes took seconds (a quadratic regex, a thousand-word number).
@pytest.mark.parametrize("text", SPEECH_PROBES.values(), ids=SPEECH_PROBES.keys())
def test_hygiene_of_long_hostile_text_is_fast_and_bounded(text: str) -> None:
    started = time.process_time()
    spoken = clean_for_speech(text)
    assert time.process_time() - started < 0.5
    assert len(spoken) <= 6 * len(text)


def test_dotted_letters_are_spoken_one_by_one() -> None:
    """espeak-ng crashed the server on ~100 dotted letters in a clause; spaced letters read the same and are safe."""
    assert clean_for_speech("The U.S. economy grew.") == "The U S. economy grew."
    assert "." not in clean_for_speech("a." * 2000)[:-1]


def test_long_link_hosts_are_just_a_link() -> None:
    assert clean_for_speech("See https://www.example.com/x?y=1 now.") == "See example.com now."
    assert clean_for_speech("www." * 1000) == "a link"
    assert clean_for_speech("http://" + "a." * 2000) == "a link"


def test_letter_runs_are_collapsed_but_digits_are_not() -> None:
    assert clean_for_speech("Sooooooo good, 1000000 people.") == "Sooo good, one million people."


def test_spoken_cost_weighs_what_espeak_makes_of_it() -> None:
    prose = "The quick brown fox jumps over the lazy dog."
    assert spoken_cost(prose) == len(prose) + 1
    assert spoken_cost("qwrtz " * 10) == 10 * (4 * 5 + 1)  # spelled letter by letter
    assert spoken_cost("FBI") == 2 * 3 + 1
    assert spoken_cost("你好") == 2 * 15 + 1
    assert spoken_cost("привет") == 6 * 6 + 1


def test_tool_call_syntax_is_not_read_out() -> None:
    """After a tool round trip a small model may imitate the call in its message (issue 17)."""
    reply = 'functions.get_weather: { &#34;city&#34;: &#34;Paris&#34;, "unit": {"c": 1}} It is sunny in Paris.'
    assert clean_for_speech(reply) == "It is sunny in Paris."
    assert spoken_transcript(reply) == "It is sunny in Paris."


# --- a streamed reply: think blocks dropped across chunks, phrases cut as they settle ------------------------


def _reply(chunks: list[str]) -> list[str]:
    phrases = ReplyPhrases()
    return [p for c in chunks for p in phrases.feed(c)] + phrases.flush()


def _tokens(text: str) -> list[str]:
    return [t + " " for t in text.split(" ")]


def test_reply_first_phrase_leaves_early() -> None:
    phrases = ReplyPhrases()
    # A short first clause leaves as soon as its comma is followed by anything...
    assert phrases.feed("Well, here") == ["Well,"]
    # ...and without one, the first four words leave once a fifth whole word has come.
    phrases = ReplyPhrases()
    assert [p for t in _tokens("The capital of France") for p in phrases.feed(t)] == []
    assert phrases.feed("is ") == ["The capital of France"]
    assert phrases.feed("Paris. And ") == ["is Paris."]
    assert phrases.flush() == ["And"]


def test_reply_nothing_lost_or_duplicated() -> None:
    text = "One. Two three four five six seven, eight nine ten eleven twelve. Dr. Smith lives on Main St. near the park! Done"
    phrases = _reply(_tokens(text))
    assert " ".join(phrases).split() == text.split()
    assert "Dr. Smith" in " ".join(phrases) and not any(p.endswith(("Dr.", "St.")) for p in phrases)


def test_think_blocks_removed_even_when_split() -> None:
    chunks = ["<thi", "nk>I should be brief.</th", "ink>Hello there, ", "friend. <think>more</think>Bye now."]
    assert " ".join(_reply(chunks)) == "Hello there, friend. Bye now."


def test_think_filter_keeps_plain_angle_brackets() -> None:
    f = ThinkFilter()
    assert f.feed("a < b and c <t") + f.feed("able>") + f.flush() == "a < b and c <table>"


def test_unterminated_think_is_dropped() -> None:
    assert _reply(["Hi. <think>never closed"]) == ["Hi."]
