"""The browser playground: `GET /` serves web/index.html, `/playground/*` the page's static modules.

Plain files, no build step: the page is ES modules that call the public API (/v1/...) like any other client, so
nothing here knows about engines. Kept out of the OpenAPI schema because it is a page, not an API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

# The repository's web/ folder (installs here are editable: `pip install -e .`, also in the Dockerfile).
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_PREFIX = "/playground"


def mount_playground(app: FastAPI, web_dir: Path = WEB_DIR) -> None:
    """Add the page to `app`; a missing web/ folder (a non-editable wheel) leaves the API untouched."""
    if not (web_dir / "index.html").is_file():
        return
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        # no-cache: the page is small and a stale app.js after an upgrade would talk to a newer API.
        return FileResponse(web_dir / "index.html", headers={"Cache-Control": "no-cache"})

    app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=web_dir), name="playground")
