"""``crosscam api``: the HTTP API and web page for a site (FastAPI + uvicorn).

SIGINT or SIGTERM stops the server (uvicorn finishes the requests in flight) and the process exits 0, stopping
the embedded Redis server it started, if any (``pipeline.cli.stopping``)."""

from __future__ import annotations

import argparse
import os
import re
import secrets

from pipeline.cli.app import Result, UsageError
from pipeline.cli.common import open_site
from pipeline.cli.progress import console
from pipeline.cli.stopping import StopRequest, stop_signals
from pipeline.config import CrosscamConfig
from pipeline.config.schema import API_KEY


def port(text: str) -> int:
    """A TCP port number, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: give a number from 1 to 65535")
    return value


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("api", parents=[common], help="serve the HTTP API (OpenAPI at /docs) and the web page")
    p.add_argument("--redis-url", help="default: $CROSSCAM_REDIS_URL, else redis.url, else an embedded server")
    p.add_argument("--site", help="site name (default: site)")
    p.add_argument("--host", help="bind address (default: api.host, 127.0.0.1)")
    p.add_argument("--port", type=port, help="port (default: api.port, 8080)")
    p.add_argument("--embedder", help="re-ID model for search by image (default: embedder.path)")
    p.set_defaults(handler=cmd_api)


def api_key(config: CrosscamConfig) -> tuple[str, bool]:
    """The configured key, else $CROSSCAM_API_KEY, else a fresh random one (True: generated)."""
    key = config.api.key or os.environ.get("CROSSCAM_API_KEY")
    if key and not re.fullmatch(API_KEY, key):
        raise UsageError(
            "$CROSSCAM_API_KEY: an API key is 1 to 256 printable ASCII characters without spaces "
            "(a browser cannot send other characters in a header); choose another"
        )
    return (key, False) if key else (secrets.token_urlsafe(24), True)


def search_limits(config: CrosscamConfig):
    """The bounds on a search's uploads, from the ``api`` section."""
    from pipeline.serve.uploads import SearchLimits

    a = config.api
    return SearchLimits(
        max_images=a.max_images,
        max_image_bytes=a.max_image_bytes,
        max_request_bytes=a.max_request_bytes,
        max_pixels=a.max_pixels,
        concurrency=a.search_concurrency,
        uploads_per_client=a.uploads_per_client,
    )


def cmd_api(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    key, generated = api_key(config)
    with stop_signals() as stop:
        return _serve(args, config, key, generated, stop)


def _serve(args: argparse.Namespace, config: CrosscamConfig, key: str, generated: bool, stop: StopRequest) -> Result:
    """Serve until a signal: uvicorn takes SIGINT and SIGTERM while it runs and raises them again once it has
    stopped, which then only sets ``stop`` (``stop_signals``), so the process ends normally."""
    import uvicorn

    from models.embedder import load_embedder
    from pipeline.serve.api import create_app

    site = open_site(args, config)
    client, keys = site.client, site.keys
    path = args.embedder or config.embedder.path
    embedder = load_embedder(path, device="cpu", cache_dir=config.cache_dir) if path else None
    host, port = args.host or config.api.host, args.port or config.api.port
    if generated:
        console.print(f"API key (set api.key or CROSSCAM_API_KEY to choose one): {key}")
    console.print(f"crosscam API for site {keys.site} on http://{host}:{port}/ (OpenAPI: /docs)")
    app = create_app(client, keys, key, embedder, search_limits(config), config.matcher.tentative_seconds)
    if not stop.is_set():  # a signal while it loaded: do not start serving
        uvicorn.run(app, host=host, port=port, log_level="info")
    return Result({"site": keys.site, "host": host, "port": port, "stopped_by": stop.by}, "API stopped")
