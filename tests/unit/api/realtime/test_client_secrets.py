"""Ephemeral realtime keys (api/realtime/client_secrets.py): short-lived and single-use."""

import pytest

from api.realtime.client_secrets import ClientSecretStore, EphemeralKeyError


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_a_key_redeems_once_with_its_session():
    store = ClientSecretStore(Clock())
    secret = store.issue(60, {"type": "realtime", "instructions": "be brief"})
    assert secret.value.startswith("ek_") and len(secret.value) > 20
    assert secret.expires_at == 1_000_060
    assert store.is_live(secret.value)
    assert store.redeem(secret.value).session["instructions"] == "be brief"
    assert not store.is_live(secret.value)
    with pytest.raises(EphemeralKeyError, match="already used"):
        store.redeem(secret.value)


def test_an_expired_key_is_refused():
    clock = Clock()
    store = ClientSecretStore(clock)
    secret = store.issue(10)
    clock.now += 10
    assert not store.is_live(secret.value)
    with pytest.raises(EphemeralKeyError, match="expired"):
        store.redeem(secret.value)


def test_keys_are_distinct_and_unknown_keys_fail():
    store = ClientSecretStore(Clock())
    assert len({store.issue(60).value for _ in range(50)}) == 50
    with pytest.raises(EphemeralKeyError):
        store.redeem("ek_not-issued")
