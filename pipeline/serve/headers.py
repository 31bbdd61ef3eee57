"""Security headers on every HTTP response of the API, as a plain ASGI middleware.

The page's script and style are files of its own (``web/``), so the Content-Security-Policy allows scripts,
styles and requests from the API's own origin only, images also from ``blob:`` (thumbnails fetched with the
key) and ``data:``, no plugins, no ``<base>``, and no framing. FastAPI's interactive docs (``/docs``,
``/redoc``) load Swagger UI and ReDoc from their CDN with an inline script, so those pages alone get a policy
that allows the CDN and inline script; they render no stored data.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {DOCS_CDN}; style-src 'self' 'unsafe-inline' {DOCS_CDN}; "
    f"img-src 'self' data: https://fastapi.tiangolo.com; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def security_headers(path: str) -> dict[str, str]:
    """The headers every response to ``path`` carries."""
    return COMMON | {"content-security-policy": DOCS_POLICY if path in DOCS_PATHS else PAGE_POLICY}


class SecurityHeaders:
    """Adds ``security_headers`` to every HTTP response (errors included), replacing any of the same name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(k.encode(), v.encode()) for k, v in security_headers(scope.get("path", "")).items()]
        names = {k for k, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
