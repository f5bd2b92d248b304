"""The playground is served at / and /playground/*, is open without a key (it asks for one), and stays out of the
OpenAPI schema; the API behind it still needs the key."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.settings import Settings
from voxloop.app import create_app


def test_page_and_modules_are_served_without_a_key_while_the_api_needs_one(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(cache_dir=tmp_path, api_key="sk-test")))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/playground/app.js">' in page.text
    for name in ("app.js", "api.js", "talk.js", "rtc.js", "audio.js", "pcm-worklet.js", "transcribe.js", "speak.js",
                 "emotion.js", "style.css"):
        response = client.get(f"/playground/{name}")
        assert response.status_code == 200, name
    module_type = client.get("/playground/app.js").headers["content-type"]
    assert module_type.startswith(("text/javascript", "application/javascript"))  # browsers refuse other types
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer sk-test"}).status_code == 200
    assert client.get("/playground/%2e%2e/api/settings.py").status_code == 404  # nothing outside web/ is served


def test_the_page_is_not_in_the_api_schema(tmp_path: Path) -> None:
    paths = TestClient(create_app(Settings(cache_dir=tmp_path))).get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/playground") for p in paths)


def test_web_files_stay_small_and_readable() -> None:
    web = Path(__file__).resolve().parents[3] / "web"
    for path in web.iterdir():
        lines = path.read_text().count("\n")
        assert lines < 400, f"{path.name} has {lines} lines; split it by tab"
