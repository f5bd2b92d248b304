"""Text hygiene before synthesis: what an LLM writes, turned into what a person would say.

Removed: `<think>` blocks, code fences, markdown markup, HTML tags, emojis, footnote marks. Spoken sensibly:
links (their text, or a bare URL's host), numbers, money, percentages, times, dates, ordinals and common
abbreviations. Paralinguistic tags (`[laugh]`) pass through untouched for `api.speech.paralinguistics`.
For a reply that streams in (the realtime voice loop), `ReplyPhrases` drops think blocks as the tokens come and
cuts the rest into phrases.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

from api.speech.paralinguistics import normalise_tag_syntax, strip_all
from engines.speech_text import PhraseStream

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}
_MONTHS = "January February March April May June July August September October November December".split()
_ABBREVIATIONS = {
    "e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "vs.": "versus", "approx.": "approximately",
    "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Dr.": "Doctor", "Prof.": "Professor", "Jr.": "Junior",
    "Sr.": "Senior", "St.": "Saint", "Mt.": "Mount", "No.": "number", "Inc.": "Incorporated", "Ltd.": "Limited",
    "Jan.": "January", "Feb.": "February", "Aug.": "August", "Sept.": "September", "Oct.": "October",
    "Nov.": "November", "Dec.": "December", "a.m.": "AM", "p.m.": "PM",
}
_UNITS = {"km": "kilometers", "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "mi": "miles",
          "lb": "pounds", "lbs": "pounds", "ms": "milliseconds", "GB": "gigabytes", "MB": "megabytes",
          "kB": "kilobytes", "TB": "terabytes", "Hz": "hertz", "kHz": "kilohertz", "mph": "miles per hour"}
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
             "£": ("pound", "pounds", "penny", "pence")}


def number_words(n: int) -> str:
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + (" " + number_words(rest) if rest else "")
    for value, name in _SCALES:
        if n >= value:
            rest = n % value
            return number_words(n // value) + " " + name + (" " + number_words(rest) if rest else "")
    return str(n)


# Longer digit runs are read digit by digit: "one two three ...", never a thousand-word number (issue 15).
MAX_NUMBER_DIGITS = 15


def cardinal_words(digits: str) -> str:
    """A run of digits as a person reads it: as a number up to hundreds of trillions, digit by digit beyond."""
    if len(digits.lstrip("0")) > MAX_NUMBER_DIGITS:
        return " ".join(_ONES[int(d)] for d in digits)
    return number_words(int(digits or "0"))


def ordinal_words(n: int) -> str:
    words = number_words(n)
    head, sep, last = words.rpartition(" ") if " " in words else ("", "", words)
    pre, dash, tail = last.rpartition("-")
    if tail in _ORDINAL_WORDS:
        tail = _ORDINAL_WORDS[tail]
    elif tail.endswith("y"):
        tail = tail[:-1] + "ieth"
    else:
        tail += "th"
    return head + sep + pre + dash + tail


def year_words(n: int) -> str:
    """1999 -> nineteen ninety-nine; 2005 -> two thousand five; 2024 -> twenty twenty-four."""
    if 2000 <= n <= 2009 or n % 1000 == 0 or not 1100 <= n <= 2099:
        return number_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return number_words(high) + " hundred"
    return number_words(high) + " " + ("oh " + _ONES[low] if low < 10 else number_words(low))


def _decimal_words(text: str) -> str:
    whole, _, frac = text.partition(".")
    words = cardinal_words(whole)
    return words + (" point " + " ".join(_ONES[int(d)] for d in frac) if frac else "")


def _date(m: re.Match[str]) -> str:
    year, month, day = int(m["y"]), int(m["m"]), int(m["d"])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return f"{_MONTHS[month - 1]} {ordinal_words(day)}, {year_words(year)}"


def _money(m: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCY[m["cur"]]
    whole = m["whole"].replace(",", "")
    amount = int(whole) if len(whole) <= MAX_NUMBER_DIGITS else None
    out = f"{cardinal_words(whole)} {one if amount == 1 else many}"
    if m["frac"] and int(m["frac"]):
        c = int(m["frac"].ljust(2, "0")[:2])
        out += f" and {number_words(c)} {cent if c == 1 else cents}"
    return out + (" " + m["scale"] if m["scale"] else "")


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m["h"]), int(m["min"])
    spoken = number_words(hour) + (" o'clock" if minute == 0 and not m["ampm"] else "")
    if minute:
        spoken += " " + ("oh " + _ONES[minute] if minute < 10 else number_words(minute))
    return spoken + (" " + m["ampm"].replace(".", "").upper() if m["ampm"] else "")


def _number(m: re.Match[str]) -> str:
    raw = m.group(0).replace(",", "")
    if "." in raw:
        return _decimal_words(raw)
    if len(raw) == 4 and 1100 <= int(raw) <= 2099 and "," not in m.group(0):
        return year_words(int(raw))  # a bare four-digit number in prose is almost always a year
    return cardinal_words(raw)


def _strip_markdown(text: str) -> str:
    text = re.sub(r"```.*?(```|$)", " ", text, flags=re.DOTALL)  # code blocks are not read out
    text = re.sub(r"`[^`\n]*`", " ", text)  # nor inline code (`rm -rf` is not "RMRF")
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\((?:[^)]*)\)", r"\1", text)
    text = re.sub(r"\[\^?\d+\]", "", text)  # footnote marks
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if re.fullmatch(r"[-*_=|: ]{3,}", line):  # rules and table separators
            continue
        line = re.sub(r"^(#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)", "", line)
        if "|" in line:
            line = ", ".join(c.strip() for c in line.strip("|").split("|") if c.strip())
        if line:
            lines.append(line)
    # A heading, list item or table row is its own phrase: give it an ending so it does not run into the next.
    if len(lines) > 1:
        lines = [line if line[-1] in ".!?:;," else line + "." for line in lines]
    text = " ".join(lines)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])", r"\1", text)
    text = re.sub(r"~~(.+?)~~", r"\1", text)
    return re.sub(r"</?[a-zA-Z][^>]*>", " ", text)  # HTML tags (paralinguistic ones were converted before)


def _initialism(m: re.Match[str]) -> str:
    """`U.S.A.` -> `U S A.`: letters spoken one by one. espeak-ng (Piper's and Kokoro's G2P) crashes the process on
    a clause of ~100 dotted letters (`a.a.a.…`, as a URL's host leaves), while spaced letters are safe."""
    letters = m.group(0).replace(".", "")
    return " ".join(letters.upper()) + ("." if m.group(0).endswith(".") else "")


# A link's host is read out when a person would read it ("example.com"); a longer one is just "a link": a host of
# a thousand labels is minutes of speech for a few kilobytes of text (issue 15).
_MAX_SPOKEN_HOST_CHARS = 40
_MAX_SPOKEN_HOST_LABELS = 4


def _url(m: re.Match[str]) -> str:
    host = m["host"].removeprefix("www.").strip(".")
    if len(host) > _MAX_SPOKEN_HOST_CHARS or host.count(".") >= _MAX_SPOKEN_HOST_LABELS or not host:
        return "a link"
    return host


def _drop_emoji(text: str) -> str:
    keep = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("So", "Cs", "Co") or 0xFE00 <= ord(ch) <= 0xFE0F or ord(ch) in (0x200D, 0x20E3) \
                or 0x1F3FB <= ord(ch) <= 0x1F3FF:
            continue
        keep.append(ch)
    return "".join(keep)


def strip_tool_syntax(text: str) -> str:
    """A small model imitating a tool call in its message (`functions.get_weather: {"city": "Paris"}`) is not read
    out; nor are the HTML entities such syntax picked up (`&#34;`)."""
    text = html.unescape(text)
    return re.sub(r"\bfunctions\.[\w.-]+:\s*(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})?", " ", text)


def strip_think(text: str) -> str:
    text = re.sub(r"<think>.*?</think>", " ", text, flags=re.DOTALL | re.IGNORECASE)
    text = re.sub(r"<think>.*", " ", text, flags=re.DOTALL | re.IGNORECASE)  # unclosed: still thinking
    return re.sub(r"^.*?</think>", " ", text, flags=re.DOTALL | re.IGNORECASE)


_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


@dataclass
class ThinkFilter:
    """Drops `<think>…</think>` from a token stream whose tags may be split across chunks."""

    _inside: bool = False
    _held: str = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        out = []
        while text:
            tag = _THINK_CLOSE if self._inside else _THINK_OPEN
            index = text.find(tag)
            if index >= 0:
                if not self._inside:
                    out.append(text[:index])
                text = text[index + len(tag) :]
                self._inside = not self._inside
                continue
            keep = _partial_suffix(text, tag)  # a tag may be cut in two by the chunking
            if not self._inside:
                out.append(text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            break
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self._inside else held


def _partial_suffix(text: str, tag: str) -> int:
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


@dataclass
class ReplyPhrases:
    """An LLM's streamed reply as phrases to speak: think blocks dropped as they stream by, the rest cut by the
    engines' phrase cutter (`PhraseStream`), the first phrase after at most four words for an early first sound."""

    _think: ThinkFilter = field(default_factory=ThinkFilter)
    _phrases: PhraseStream = field(default_factory=lambda: PhraseStream(first_words=4, first_max_words=4))

    def feed(self, delta: str) -> list[str]:
        return self._phrases.feed(self._think.feed(delta))

    def flush(self) -> list[str]:
        return self._phrases.feed(self._think.flush()) + self._phrases.flush()


def clean_for_speech(text: str) -> str:
    """The whole pipeline. Returns "" when nothing speakable is left."""
    text = strip_tool_syntax(strip_think(text))
    text = normalise_tag_syntax(text)
    text = re.sub(r"([^\W\d_])\1{3,}", r"\1\1\1", text)  # "Soooooo" is "Sooo"; 4,096 x's are not 4,096 letters
    text = re.sub(r"(?P<url>(?:https?://|www\.)(?P<host>[\w.-]+)[^\s)\]]*)", lambda m: _url(m), text)
    text = _strip_markdown(text)
    text = re.sub(r"°\s?([CF])\b", lambda m: " degrees " + ("Celsius" if m.group(1) == "C" else "Fahrenheit"), text)
    text = text.replace("°", " degrees")
    text = re.sub(r"\s*[→⇒⟶←⇐↔]\s*", ", ", text)  # arrows in notes: a pause, not "rightwards arrow"
    text = _drop_emoji(text)
    for short, long in _ABBREVIATIONS.items():
        text = re.sub(rf"(?<![\w.]){re.escape(short)}", long, text)
    text = re.sub(r"(?<![\w.])[^\W\d_](?:\.[^\W\d_])+\.?(?!\w)", _initialism, text)
    text = re.sub(r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b", _date, text)
    text = re.sub(r"\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})\b", _date, text)
    money = r"(?P<cur>[$€£])(?P<whole>\d[\d,]*)(?:\.(?P<frac>\d+))?(?:\s?(?P<scale>million|billion|thousand))?"
    text = re.sub(money, _money, text)
    text = re.sub(r"\b(?P<h>\d{1,2}):(?P<min>\d{2})(?:\s?(?P<ampm>[ap]m\b))?(?![\d:])", _time, text,
                  flags=re.IGNORECASE)
    # Each digit pattern starts only where a run of digits starts (the look-behind): tried at every digit of a long
    # run, a `\d+` that then fails is quadratic.
    text = re.sub(r"(?<![\d.])(\d+(?:\.\d+)?)\s?%", lambda m: _decimal_words(m.group(1)) + " percent ", text)
    text = re.sub(r"(?<!\d)\b(\d{1,15})(st|nd|rd|th)\b", lambda m: ordinal_words(int(m.group(1))), text)
    units = "|".join(_UNITS)
    text = re.sub(rf"(?<![\d.])\b(\d+(?:\.\d+)?)\s?({units})\b", lambda m: f"{m.group(1)} {_UNITS[m.group(2)]}", text)
    text = re.sub(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|(?<![\d.])\d+(?:\.\d+)?(?![\d])", _number, text)
    text = text.replace("&", " and ").replace("@", " at ")
    text = re.sub(r"[#*_~^\\{}<>|=]+", " ", text)  # leftover markup symbols nobody would say
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"([.!?])[.!?,]+", r"\1", text)
    return " ".join(text.split())


def spoken_transcript(text: str) -> str:
    """What a transcript of spoken `text` shows: no think blocks, markdown, emojis or tags; numbers as written."""
    text = _strip_markdown(strip_tool_syntax(strip_think(normalise_tag_syntax(text))))
    return " ".join(strip_all(_drop_emoji(text)).split())


_VOWELS = frozenset("aeiouyAEIOUY")


def spoken_cost(text: str) -> int:
    """What speaking `text` costs, in characters of English prose that take as long: a TTS engine's time and memory
    follow the phonemes it makes, and espeak-ng (the G2P of Piper and Kokoro) makes ~1.1 per character of prose but
    4-5 per character of a spelled-out consonant run, and 6-15 per character of a script the voice does not speak
    (it reads "Chinese letter" for each ideograph). Measured with Piper's English voice; an upper bound, not a count.
    """
    cost = 0.0
    for token in text.split():
        if token.isascii():
            letters = [c for c in token if c.isalpha()]
            if len(letters) > 3 and not _VOWELS.intersection(letters):
                cost += 4 * len(token)  # spelled letter by letter
            elif len(letters) > 1 and token.isupper():
                cost += 2 * len(token)  # an acronym: spelled
            else:
                cost += len(token)
        else:
            cost += sum(_char_cost(c) for c in token)
        cost += 1
    return int(cost)


def _char_cost(char: str) -> float:
    code = ord(char)
    if code < 0x80:
        return 1
    if code < 0x250:  # Latin-1 and Latin Extended
        return 2
    if 0x3040 <= code < 0x3100 or 0xAC00 <= code < 0xD7B0:  # kana, hangul syllables
        return 3
    if unicodedata.category(char).startswith("L") and not 0x4E00 <= code < 0xA000:  # other alphabets and abugidas
        return 6
    return 15  # ideographs, abjads the voice spells, symbols
