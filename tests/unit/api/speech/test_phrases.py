"""Phrase chunking of streamed LLM text, and think-block removal across chunk boundaries."""

from __future__ import annotations

from api.speech.phrases import PhraseChunker, ThinkFilter


def _run(chunks: list[str], **kw) -> list[str]:
    chunker = PhraseChunker(**kw)
    out = [p for c in chunks for p in chunker.feed(c)]
    return out + list(chunker.flush())


def _tokens(text: str) -> list[str]:
    return [t + " " for t in text.split(" ")]


def test_first_phrase_leaves_early() -> None:
    # A clause of three or more words ends the first phrase as soon as it appears...
    phrases = _run(_tokens("Well, here it is, after looking at the whole report carefully. It is good."))
    assert phrases[0] == "Well, here it is,"
    assert phrases[1] == "after looking at the whole report carefully."
    assert phrases[-1] == "It is good."
    # ...and without one, the first four whole words go (the voice starts instead of waiting for a comma).
    phrases = _run(_tokens("The capital of France is Paris and it is lovely."))
    assert phrases == ["The capital of France", "is Paris and it is lovely."]


def test_nothing_lost_or_duplicated() -> None:
    text = "One. Two three four five six seven, eight nine ten eleven twelve. Dr. Smith lives on Main St. near the park! Done"
    phrases = _run(_tokens(text))
    assert " ".join(phrases).split() == text.split()
    assert "Dr. Smith" in " ".join(phrases) and not any(p.endswith("Dr.") for p in phrases)


def test_think_blocks_removed_even_when_split() -> None:
    chunks = ["<thi", "nk>I should be brief.</th", "ink>Hello there, ", "friend. <think>more</think>Bye now."]
    assert " ".join(_run(chunks)) == "Hello there, friend. Bye now."


def test_think_filter_keeps_plain_angle_brackets() -> None:
    f = ThinkFilter()
    assert f.feed("a < b and c <t") + f.feed("able>") + f.flush() == "a < b and c <table>"


def test_unterminated_think_is_dropped() -> None:
    assert _run(["Hi. <think>never closed"]) == ["Hi."]
