"""The session state machine: every trigger in every state (a transition or a bug), every client event in every
state (allowed, or refused with the error the session sends), and the way back after a response ends."""

from __future__ import annotations

import pytest

from api.realtime.events import CLIENT_EVENT_TYPES
from api.realtime.state import InvalidTransition, SessionStateMachine, State, Trigger

I, S, C, R, X = State.IDLE, State.USER_SPEAKING, State.COMMITTED, State.RESPONDING, State.CLOSING
T = Trigger
# How to reach each state from a new session.
PATHS = {I: [], S: [T.SPEECH_STARTED], C: [T.SPEECH_STARTED, T.TURN_COMMITTED], R: [T.RESPONSE_STARTED],
         X: [T.CLOSE]}
# What each trigger does in each state, written out independently of the module's table. None: no transition
# (firing it is a bug in the session).
EXPECTED = {
    I: {T.SPEECH_STARTED: S, T.TURN_COMMITTED: C, T.TURN_CLEARED: I, T.RESPONSE_STARTED: R, T.RESPONSE_ENDED: None,
        T.CLOSE: X},
    S: {T.SPEECH_STARTED: S, T.TURN_COMMITTED: C, T.TURN_CLEARED: I, T.RESPONSE_STARTED: R, T.RESPONSE_ENDED: None,
        T.CLOSE: X},
    C: {T.SPEECH_STARTED: S, T.TURN_COMMITTED: C, T.TURN_CLEARED: C, T.RESPONSE_STARTED: R, T.RESPONSE_ENDED: None,
        T.CLOSE: X},
    R: {T.SPEECH_STARTED: R, T.TURN_COMMITTED: R, T.TURN_CLEARED: R, T.RESPONSE_STARTED: None,
        T.RESPONSE_ENDED: I, T.CLOSE: X},
    X: {T.SPEECH_STARTED: X, T.TURN_COMMITTED: X, T.TURN_CLEARED: X, T.RESPONSE_STARTED: None, T.RESPONSE_ENDED: X,
        T.CLOSE: X},
}
# Client events refused by state, with the `error.code` the client gets; every other pair is allowed.
REFUSED = {
    (R, "response.create"): "conversation_already_has_active_response",
    (X, "response.create"): "server_shutting_down",
    (I, "response.cancel"): "response_cancel_not_active",
    (S, "response.cancel"): "response_cancel_not_active",
    (C, "response.cancel"): "response_cancel_not_active",
    **{(state, "output_audio_buffer.clear"): "invalid_value" for state in State},
}


def machine_in(state: State) -> SessionStateMachine:
    machine = SessionStateMachine()
    for trigger in PATHS[state]:
        machine.fire(trigger)
    assert machine.state is state
    return machine


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("trigger", list(Trigger))
def test_every_trigger_in_every_state(state: State, trigger: Trigger) -> None:
    machine = machine_in(state)
    expected = EXPECTED[state][trigger]
    if expected is None:
        with pytest.raises(InvalidTransition):
            machine.fire(trigger)
        assert machine.state is state  # a refused trigger changes nothing
    else:
        assert machine.fire(trigger) is expected and machine.state is expected


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event_type", CLIENT_EVENT_TYPES)
def test_every_client_event_in_every_state(state: State, event_type: str) -> None:
    refusal = machine_in(state).refusal(event_type)
    code = REFUSED.get((state, event_type))
    if code is None:
        assert refusal is None, f"{event_type} should be allowed in {state.value}"
    else:
        assert refusal is not None and refusal.code == code
        error = refusal.error("evt_1")
        assert error.event_id == "evt_1" and error.message


def test_shutdown_refusal_is_a_server_error() -> None:
    refusal = machine_in(X).refusal("response.create")
    assert refusal is not None and refusal.type == "server_error"


@pytest.mark.parametrize(
    ("during", "after"),
    [
        ([], I),  # nothing happened on the input side
        ([T.SPEECH_STARTED], S),  # the user talks over the reply without barge-in: still speaking when it ends
        ([T.SPEECH_STARTED, T.TURN_COMMITTED], C),  # ... and finished a turn that has no reply yet
        ([T.SPEECH_STARTED, T.TURN_CLEARED], I),
    ],
)
def test_a_response_ends_back_on_the_input_side(during: list[Trigger], after: State) -> None:
    machine = machine_in(R)
    for trigger in during:
        assert machine.fire(trigger) is R
    assert machine.fire(T.RESPONSE_ENDED) is after


def test_the_committed_turn_is_answered_by_the_response() -> None:
    machine = machine_in(C)
    machine.fire(T.RESPONSE_STARTED)
    assert machine.fire(T.RESPONSE_ENDED) is I


def test_a_response_started_while_the_user_speaks_ends_back_in_the_turn() -> None:
    machine = machine_in(S)
    assert machine.fire(T.RESPONSE_STARTED) is R
    assert machine.fire(T.RESPONSE_ENDED) is S
