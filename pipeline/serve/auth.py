"""The API key, checked before anything else of a request is looked at.

``ApiKeyGate`` is a plain ASGI middleware: a request to a path under ``/api/`` without the key in its
``X-API-Key`` header (or with another) is answered 401 from its headers alone, so an upload without the key
is never read, parsed or spooled to disk. The routes check the key again (``key_matches``), which also puts
the header in the OpenAPI document.
"""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.serve.asgi import answer

HEADER = "X-API-Key"
UNAUTHORISED = f"missing or wrong API key: send it in the {HEADER} header"


def key_matches(sent: bytes | None, expected: bytes) -> bool:
    """Whether a header's bytes (``None``: no header) are the key's UTF-8 bytes, compared in constant time.
    A header is Latin-1 text on the wire: a key of other characters never matches, and is no error."""
    return sent is not None and secrets.compare_digest(sent, expected)


def guarded(path: str) -> bool:
    """Whether a path needs the key: everything under ``/api``."""
    return path == "/api" or path.startswith("/api/")


class ApiKeyGate:
    """ASGI middleware: 401 for a request to a ``guarded`` path without ``key``, before its body is read."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.expected = app, key.encode("utf-8")
        self.header = HEADER.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and guarded(scope.get("path", "")):
            sent = next((v for k, v in scope.get("headers", []) if k.lower() == self.header), None)
            if not key_matches(sent, self.expected):
                await answer(scope, send, 401, UNAUTHORISED)
                return
        await self.app(scope, receive, send)
