"""The state machine of one realtime session: its states, the transitions between them, and which client events
each state refuses. All three tables are here; the session fires triggers and asks before dispatching an event.

    idle ──speech──▶ user_speaking ──commit──▶ committed ──response──▶ responding ──ended──▶ (the input side)
      ▲                   │ clear                  │ speech                  (speech/commit/clear: stays)
      └───────────────────┘                        ▼
                                              user_speaking             any state ──close──▶ closing (final)

While a response runs the session stays `responding` even when the user talks over it without barge-in; the
machine remembers the input side (idle, user_speaking or committed) and returns to it when the response ends.
`closing` is the server shutting down (a response in progress may finish, no new one starts) and, after that,
the session's end.

Client events: every event type is allowed in every state except the refusals in `REFUSALS`, which the session
answers with an `error` event (the session carries on). An allowed event may still be refused for what it says
(an unknown item id, a bad session field): that is the handler's business, not the state's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from api.realtime.events import CLIENT_EVENT_TYPES, RealtimeProtocolError
from api.realtime.sessions import SHUTTING_DOWN_CODE


class State(enum.Enum):
    IDLE = "idle"  # no user turn open, no response running
    USER_SPEAKING = "user_speaking"  # the VAD is inside a user turn
    COMMITTED = "committed"  # a user turn is in the conversation; no reply to it has started
    RESPONDING = "responding"  # a response runs: from response.create (or the automatic reply) until it ends
    CLOSING = "closing"  # server shutdown, then the end of the session: no new responses


class Trigger(enum.Enum):
    SPEECH_STARTED = "speech_started"  # the VAD heard the user start a turn
    TURN_COMMITTED = "turn_committed"  # a user turn went into the conversation (VAD end, timeout, manual commit)
    TURN_CLEARED = "turn_cleared"  # the open turn was dropped (input_audio_buffer.clear, new turn detection)
    RESPONSE_STARTED = "response_started"
    RESPONSE_ENDED = "response_ended"
    CLOSE = "close"


RESUME: Final = "resume"  # a transition's target: back to the input side (see the module docstring)
INPUT_TRIGGERS = frozenset({Trigger.SPEECH_STARTED, Trigger.TURN_COMMITTED, Trigger.TURN_CLEARED})

_I, _S, _C, _R, _X = State.IDLE, State.USER_SPEAKING, State.COMMITTED, State.RESPONDING, State.CLOSING
T = Trigger
TRANSITIONS: Final[dict[tuple[State, Trigger], State | Literal["resume"]]] = {
    (_I, T.SPEECH_STARTED): _S, (_I, T.TURN_COMMITTED): _C, (_I, T.TURN_CLEARED): _I, (_I, T.RESPONSE_STARTED): _R,
    (_S, T.SPEECH_STARTED): _S, (_S, T.TURN_COMMITTED): _C, (_S, T.TURN_CLEARED): _I, (_S, T.RESPONSE_STARTED): _R,
    # Clearing the buffer does not take back a turn already in the conversation.
    (_C, T.SPEECH_STARTED): _S, (_C, T.TURN_COMMITTED): _C, (_C, T.TURN_CLEARED): _C, (_C, T.RESPONSE_STARTED): _R,
    # The user may talk over a reply (barge-in cancels it, which ends it); the input side is remembered meanwhile.
    (_R, T.SPEECH_STARTED): _R, (_R, T.TURN_COMMITTED): _R, (_R, T.TURN_CLEARED): _R, (_R, T.RESPONSE_ENDED): RESUME,
    # Closing is final: input is still read until the end, a response in progress may finish.
    (_X, T.SPEECH_STARTED): _X, (_X, T.TURN_COMMITTED): _X, (_X, T.TURN_CLEARED): _X, (_X, T.RESPONSE_ENDED): _X,
    (_I, T.CLOSE): _X, (_S, T.CLOSE): _X, (_C, T.CLOSE): _X, (_R, T.CLOSE): _X, (_X, T.CLOSE): _X,
}


@dataclass(frozen=True)
class Refusal:
    """Why a client event is refused in a state: the fields of its `error` event."""

    message: str
    code: str
    type: str = "invalid_request_error"
    param: str | None = None

    def error(self, event_id: str | None) -> RealtimeProtocolError:
        return RealtimeProtocolError(self.message, code=self.code, param=self.param, event_id=event_id,
                                     type_=self.type)


ALREADY_RESPONDING = Refusal(
    "Conversation already has an active response in progress; cancel it or wait for response.done.",
    "conversation_already_has_active_response",
)
NO_NEW_RESPONSES = Refusal("The server is shutting down; no new responses.", SHUTTING_DOWN_CODE, "server_error")
NO_ACTIVE_RESPONSE = Refusal("There is no active response to cancel.", "response_cancel_not_active")
WEBRTC_ONLY = Refusal("output_audio_buffer.clear is only supported for WebRTC and SIP calls.", "invalid_value",
                      param="type")

# (state, client event type) -> the refusal; a pair not listed is allowed.
REFUSALS: Final[dict[tuple[State, str], Refusal]] = {
    (_R, "response.create"): ALREADY_RESPONDING,
    (_X, "response.create"): NO_NEW_RESPONSES,
    (_I, "response.cancel"): NO_ACTIVE_RESPONSE,
    (_S, "response.cancel"): NO_ACTIVE_RESPONSE,
    (_C, "response.cancel"): NO_ACTIVE_RESPONSE,
    **{(state, "output_audio_buffer.clear"): WEBRTC_ONLY for state in State},
}
assert all(event in CLIENT_EVENT_TYPES for _, event in REFUSALS)


class InvalidTransition(RuntimeError):
    """A trigger the current state has no transition for: a bug in the session, never a client mistake."""


class SessionStateMachine:
    def __init__(self) -> None:
        self.state = State.IDLE
        self._input = State.IDLE  # the input side: idle, user_speaking or committed

    def fire(self, trigger: Trigger) -> State:
        target = TRANSITIONS.get((self.state, trigger))
        if target is None:
            raise InvalidTransition(f"{trigger.value} in state {self.state.value}")
        if trigger in INPUT_TRIGGERS:
            self._input = TRANSITIONS[(self._input, trigger)]  # type: ignore[assignment]  # input states only
        elif trigger is Trigger.RESPONSE_STARTED and self._input is State.COMMITTED:
            self._input = State.IDLE  # the committed turn got its reply
        self.state = self._input if target == RESUME else target  # type: ignore[assignment]
        return self.state

    def refusal(self, event_type: str) -> Refusal | None:
        """Why this state refuses a client event of this type, or None when it is allowed."""
        return REFUSALS.get((self.state, event_type))
