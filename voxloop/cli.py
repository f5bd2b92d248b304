"""`voxloop serve`: start the server with settings from the environment (VOXLOOP_*) and flags."""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voxloop", description="OpenAI-compatible speech server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP/WebSocket server")
    serve.add_argument("--host", help="bind address (default: VOXLOOP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: VOXLOOP_PORT or 8000)")
    args = parser.parse_args(argv)

    import uvicorn

    from api.app import create_app
    from api.settings import Settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings.warn_unknown_env()
    # voxloop's own access log carries request ids; uvicorn's would duplicate every line.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=False, ws_max_size=16 * 1024 * 1024)


if __name__ == "__main__":
    main()
