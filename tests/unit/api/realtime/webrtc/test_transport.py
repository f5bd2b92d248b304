"""CallTransport without a network: audio deltas go to the track, the output-audio-buffer events, barge-in."""

import base64
import json

from api.realtime.webrtc.transport import CallTransport


class Channel:
    label, readyState = "oai-events", "open"

    def __init__(self):
        self.sent = []

    def on(self, name):
        return lambda f: f

    def send(self, text):
        self.sent.append(json.loads(text))


def _delta(ms, response="resp_1", item="item_1"):
    pcm = b"\x10\x00" * (24 * ms)
    return json.dumps({"type": "response.output_audio.delta", "response_id": response, "item_id": item,
                       "output_index": 0, "content_index": 0, "delta": base64.b64encode(pcm).decode()})


async def test_audio_plays_on_the_track_with_started_and_stopped():
    transport, channel = CallTransport(), Channel()
    transport.attach_channel(channel)
    await transport.send(_delta(100))
    await transport.send(json.dumps({"type": "response.output_audio.done", "response_id": "resp_1"}))
    assert [e["type"] for e in channel.sent] == ["response.output_audio.done"]  # no audio on the channel
    frames = [await transport.out.recv() for _ in range(6)]
    assert all(f.samples == 480 and f.sample_rate == 24_000 for f in frames)
    types = [e["type"] for e in channel.sent]
    assert types == ["response.output_audio.done", "output_audio_buffer.started", "output_audio_buffer.stopped"]
    assert channel.sent[1]["response_id"] == channel.sent[2]["response_id"] == "resp_1"


async def test_barge_in_truncates_at_what_was_sent_and_drops_late_audio():
    transport, channel = CallTransport(), Channel()
    transport.attach_channel(channel)
    await transport.send(_delta(1000))
    for _ in range(10):  # 200 ms sent
        await transport.out.recv()
    await transport.send(json.dumps({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0,
                                     "item_id": "item_u"}))
    types = [e["type"] for e in channel.sent]
    assert types[-2:] == ["output_audio_buffer.cleared", "input_audio_buffer.speech_started"]
    truncate = json.loads(await transport.receive())
    assert truncate == {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0,
                        "audio_end_ms": 200}
    await transport.send(_delta(100))  # the cancelled reply's late audio
    assert not transport.out.pending


async def test_binary_messages_get_an_error_and_clear_is_answered():
    transport, channel = CallTransport(), Channel()
    transport.attach_channel(channel)
    transport.inject(b"\x00\x01")
    assert channel.sent[-1]["type"] == "error" and channel.sent[-1]["error"]["code"] == "invalid_event"
    await transport.send(_delta(500))
    transport.inject(json.dumps({"type": "output_audio_buffer.clear"}))
    assert channel.sent[-1]["type"] == "output_audio_buffer.cleared" and not transport.out.pending
    transport.inject('{"type": "response.create"}')
    assert json.loads(await transport.receive())["type"] == "response.create"
