"""`voxloop serve`: start the server with settings from the environment (VOXLOOP_*) and flags."""

from __future__ import annotations

import argparse
import logging
import os
import sys

# Exit status when the configuration is refused (as argparse uses for bad usage).
EXIT_REFUSED = 2
# Exit status when the server could not start (uvicorn's own value).
EXIT_STARTUP_FAILURE = 3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voxloop", description="OpenAI-compatible speech server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP/WebSocket server")
    serve.add_argument("--host", help="bind address (default: VOXLOOP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: VOXLOOP_PORT or 8000)")
    ray_cmd = sub.add_parser("ray", help="run on Ray Serve: the app as ingress, each engine its own deployment")
    ray_cmd.add_argument("--host", help="bind address of Serve's HTTP proxy (default: VOXLOOP_HOST or 127.0.0.1)")
    ray_cmd.add_argument("--port", type=int, help="port (default: VOXLOOP_PORT or 8000)")
    ray_cmd.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local one)")
    args = parser.parse_args(argv)

    from api.settings import WARM_ROLES
    from voxloop.logs import configure_logging
    from voxloop.profiles import ProfileError, check_profile, resolve_settings

    overrides: dict[str, object] = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if "VOXLOOP_WARMUP" not in os.environ:  # serve warms the voice loop's models unless told otherwise
        overrides["warmup"] = list(WARM_ROLES)
    settings = resolve_settings(**overrides)  # VOXLOOP_PROFILE's values under what the environment sets
    configure_logging(settings.log_level, settings.log_format)
    settings.warn_unknown_env()
    problem = settings.public_bind_problem()
    if problem is not None:
        logging.getLogger("voxloop").error(problem)
        sys.exit(EXIT_REFUSED)
    try:
        check_profile(settings)  # a GPU stack that cannot run here fails now, not at the first request
    except ProfileError as exc:
        logging.getLogger("voxloop").error("%s", exc)
        sys.exit(EXIT_REFUSED)
    if args.command == "ray":
        from voxloop.ray import run

        run(settings, address=args.address)
        return

    import uvicorn

    from api.native_memory import limit_arenas
    from voxloop.app import create_app
    from voxloop.server import GracefulServer

    # voxloop's own access log carries request ids; uvicorn's would duplicate every line. On SIGTERM the server
    # stops accepting, closes realtime sessions properly, lets in-flight requests finish, all within the grace.
    limit_arenas(settings.malloc_arena_max)  # before uvicorn and the engines start their threads
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        ws_max_size=settings.realtime.max_message_bytes,  # above the append limit: too large is an error event
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    server = GracefulServer(config, drain=app.state.services.realtime_sessions.drain)
    server.run()
    if not server.started:  # as uvicorn.run: a failed startup (port taken, lifespan error) is an error exit
        sys.exit(EXIT_STARTUP_FAILURE)

if __name__ == "__main__":
    main()
