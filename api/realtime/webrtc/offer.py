"""Validate a WebRTC SDP offer before a peer connection is made for it.

OpenAI answers 400 to an offer it cannot serve; so does voxloop, with the reason: the offer must be SDP text
(`v=0` first), carry an audio m-line (the microphone track, or at least a recvonly transceiver for the reply), and an
`application` m-line for SCTP (the `oai-events` data channel). aiortc would accept an offer without either and
produce a call that can never work.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SDP_BYTES = 64 * 1024  # a browser offer is 2-6 KiB; anything this large is not one


class InvalidOfferError(ValueError):
    """The offer cannot make a call: answered 400 with this message."""

    def __init__(self, message: str, code: str = "invalid_offer"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Offer:
    sdp: str
    audio_direction: str  # sendrecv / sendonly / recvonly / inactive, from the client's side
    has_opus: bool


def parse_offer(text: str) -> Offer:
    if len(text.encode()) > MAX_SDP_BYTES:
        raise InvalidOfferError(f"The SDP offer is larger than {MAX_SDP_BYTES} bytes.", "invalid_offer")
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise InvalidOfferError("The request body is not an SDP offer (it must start with 'v=0').", "invalid_sdp")
    media: list[tuple[str, list[str]]] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise InvalidOfferError(f"Malformed SDP line: {line[:60]!r}.", "invalid_sdp")
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4:
                raise InvalidOfferError(f"Malformed SDP media line: {line[:60]!r}.", "invalid_sdp")
            media.append((parts[0], [line]))
        elif media:
            media[-1][1].append(line)
    audio = [block for kind, block in media if kind == "audio"]
    if not audio:
        raise InvalidOfferError("The SDP offer has no audio media section; a realtime call needs one.", "no_audio")
    if not any(kind == "application" for kind, _ in media):
        raise InvalidOfferError(
            "The SDP offer has no data channel (application m-line); create the 'oai-events' data channel "
            "before making the offer.", "no_data_channel")
    block = audio[0]
    direction = next((line[2:] for line in block if line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive")),
                     "sendrecv")
    has_opus = any(line.startswith("a=rtpmap:") and "opus/48000" in line.lower() for line in block)
    if not has_opus:
        raise InvalidOfferError("The SDP offer's audio section does not offer Opus (opus/48000).", "no_opus")
    return Offer(sdp=text, audio_direction=direction, has_opus=has_opus)
