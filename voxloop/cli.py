"""`voxloop serve`: start the server with settings from the environment (VOXLOOP_*) and flags."""

from __future__ import annotations

import argparse
import logging
import sys

# Exit status when the configuration is refused (as argparse uses for bad usage).
EXIT_REFUSED = 2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voxloop", description="OpenAI-compatible speech server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP/WebSocket server")
    serve.add_argument("--host", help="bind address (default: VOXLOOP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: VOXLOOP_PORT or 8000)")
    args = parser.parse_args(argv)

    from api.logs import configure_logging
    from api.settings import Settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    settings.warn_unknown_env()
    problem = settings.public_bind_problem()
    if problem is not None:
        logging.getLogger("voxloop").error(problem)
        sys.exit(EXIT_REFUSED)

    import uvicorn

    from api.app import create_app

    # voxloop's own access log carries request ids; uvicorn's would duplicate every line. On SIGTERM uvicorn stops
    # accepting, lets in-flight requests finish for up to the grace period, then closes what is left.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        ws_max_size=16 * 1024 * 1024,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


if __name__ == "__main__":
    main()
