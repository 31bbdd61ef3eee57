"""Answering a request from a plain ASGI middleware, before the app (and its body parsing) sees it."""

from __future__ import annotations

import json

from starlette.types import Scope, Send


def body_follows(scope: Scope) -> bool:
    """Whether the request declares a body (a ``Content-Length`` other than 0, or a transfer encoding)."""
    headers = dict(scope.get("headers", []))
    return headers.get(b"content-length", b"0").strip() not in (b"0", b"") or b"transfer-encoding" in headers


async def answer(scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """Answer ``{"detail": detail}`` with ``status`` without reading the request's body. A request with a body
    gets ``Connection: close``: the server then drops the rest of the body instead of reading it."""
    body = json.dumps({"detail": detail}).encode()
    extra = {"content-type": "application/json", "content-length": str(len(body))} | (headers or {})
    if body_follows(scope):
        extra["connection"] = "close"
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
