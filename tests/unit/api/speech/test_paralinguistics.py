"""Paralinguistic tags: rendered where the engine can, mapped to pauses or dropped elsewhere, never spoken."""

from __future__ import annotations

from api.speech.paralinguistics import apply_tags, canonical, find_tags, normalise_tag_syntax, split_pauses, strip_all


def test_syntax_variants_become_bracket_tags() -> None:
    assert normalise_tag_syntax("a <laugh> b *sighs* c <b>x</b>") == "a [laugh] b [sigh] c <b>x</b>"
    assert canonical("Clear_Throat") == "clear throat"
    assert canonical("laughing") == "laugh"


def test_unsupported_tags_become_pauses_and_stage_directions_vanish() -> None:
    text, report = apply_tags("Well [sigh] okay [smiles] then [laugh].", frozenset())
    assert "[" not in text
    assert split_pauses(text) == ["Well", 0.4, "okay then", 0.3, "."]
    assert report.mapped == ["sigh", "laugh"] and report.dropped == ["smiles"] and report.rendered == []


def test_supported_tags_stay_inline() -> None:
    text, report = apply_tags("Ha [laugh] yes [sigh].", frozenset({"laugh"}))
    assert "[laugh]" in text and "[sigh]" not in text
    assert report.rendered == ["laugh"] and report.mapped == ["sigh"]


def test_find_and_strip() -> None:
    assert find_tags("[gasp] oh [smiles] no [cough]") == ["gasp", "cough"]
    assert strip_all("Oh <gasp> no [cough] really.") == "Oh no really."
