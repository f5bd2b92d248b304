"""SDP offer validation for WebRTC realtime calls (api/realtime/webrtc/offer.py)."""

import pytest

from api.realtime.webrtc.offer import InvalidOfferError, parse_offer

AUDIO = ("m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
         "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n")
DATA = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sctp-port:5000\r\n"
HEAD = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def test_browser_like_offer_is_accepted():
    offer = parse_offer(HEAD + AUDIO + DATA)
    assert offer.audio_direction == "sendrecv" and offer.has_opus


def test_recvonly_audio_is_accepted_with_its_direction():
    assert parse_offer(HEAD + AUDIO.replace("sendrecv", "recvonly") + DATA).audio_direction == "recvonly"


@pytest.mark.parametrize("text, code", [
    ("", "invalid_sdp"),
    ("hello world", "invalid_sdp"),
    ('{"type": "offer"}', "invalid_sdp"),
    (HEAD + "garbage line\r\n" + AUDIO + DATA, "invalid_sdp"),
    (HEAD + "m=audio 9\r\n" + DATA, "invalid_sdp"),
    (HEAD + DATA, "no_audio"),
    (HEAD + AUDIO.replace("audio", "video").replace("opus", "VP8"), "no_audio"),
    (HEAD + AUDIO, "no_data_channel"),
    (HEAD + AUDIO.replace("a=rtpmap:111 opus/48000/2\r\n", "") + DATA, "no_opus"),
    ("v=0\r\n" + "a=x\r\n" * 20000, "invalid_offer"),
])
def test_unusable_offers_are_refused_with_a_reason(text, code):
    with pytest.raises(InvalidOfferError) as raised:
        parse_offer(text)
    assert raised.value.code == code
    assert str(raised.value)
