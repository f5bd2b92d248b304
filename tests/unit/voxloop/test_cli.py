"""`voxloop serve` refuses a public bind without a key, and passes the graceful-shutdown grace period and the
WebSocket message limit to uvicorn."""

from __future__ import annotations

import pytest

from api.settings import Settings, is_loopback
from voxloop import cli
from voxloop.server import GracefulServer


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.5", False), ("example.com", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path) -> list[dict]:
    for key in ("VOXLOOP_API_KEY", "VOXLOOP_ALLOW_INSECURE_PUBLIC", "VOXLOOP_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VOXLOOP_CACHE_DIR", str(tmp_path))
    calls: list[dict] = []

    def run(server: GracefulServer) -> None:  # what would have been served, without binding a socket
        calls.append({"host": server.config.host, "timeout_graceful_shutdown": server.config.timeout_graceful_shutdown,
                      "access_log": server.config.access_log, "ws_max_size": server.config.ws_max_size})
        server.started = True

    monkeypatch.setattr(GracefulServer, "run", run)
    return calls


def test_public_bind_without_key_refused(started: list[dict]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--host", "0.0.0.0"])
    assert info.value.code == cli.EXIT_REFUSED and started == []


@pytest.mark.parametrize("env", [{"VOXLOOP_API_KEY": "k"}, {"VOXLOOP_ALLOW_INSECURE_PUBLIC": "true"}])
def test_public_bind_allowed_with_key_or_flag(started: list[dict], monkeypatch: pytest.MonkeyPatch, env) -> None:
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    monkeypatch.setenv("VOXLOOP_SHUTDOWN_GRACE_SECONDS", "7")
    cli.main(["serve", "--host", "0.0.0.0", "--port", "9"])
    assert started[0]["host"] == "0.0.0.0" and started[0]["timeout_graceful_shutdown"] == 7
    assert started[0]["access_log"] is False


def test_loopback_needs_no_key(started: list[dict]) -> None:
    cli.main(["serve"])
    assert started[0]["host"] == "127.0.0.1"


def test_websocket_message_limit_is_the_setting(started: list[dict], monkeypatch: pytest.MonkeyPatch) -> None:
    cli.main(["serve"])
    assert started[0]["ws_max_size"] == 32 * 1024 * 1024  # above the 15 MiB append limit (uvicorn's default: 16 MiB)
    monkeypatch.setenv("VOXLOOP_REALTIME__MAX_MESSAGE_BYTES", str(48 * 1024 * 1024))
    cli.main(["serve"])
    assert started[1]["ws_max_size"] == 48 * 1024 * 1024


def test_problem_message_names_both_ways_out() -> None:
    problem = Settings(host="10.0.0.1").public_bind_problem()
    assert problem and "VOXLOOP_API_KEY" in problem and "VOXLOOP_ALLOW_INSECURE_PUBLIC" in problem
