"""Uploads in flight per client: a bound on how many search requests one client address may have under way
at once, from their first header to their answer (upload, wait and work included).

The client is the request's peer address as the server reports it (uvicorn takes it from
``X-Forwarded-For`` when the request comes from an address in ``$FORWARDED_ALLOW_IPS``, by default 127.0.0.1
and ::1, so clients behind a reverse proxy on the same host are told apart). One past the bound is answered 429 with
``Retry-After`` from its headers, before its body is read. A slot is freed just before the last byte of its
answer is sent, so a client that has its answer may send the next request at once.
"""

from __future__ import annotations

import collections

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.serve.asgi import answer

RETRY_AFTER = 2  # seconds a client is asked to wait past the bound: about one search's work


class UploadSlots:
    """ASGI middleware: at most ``per_client`` requests to ``path`` from one client address at once (429 above).
    It runs on the server's event loop only, so its counts need no lock."""

    def __init__(self, app: ASGIApp, path: str, per_client: int) -> None:
        self.app, self.path, self.per_client = app, path, per_client
        self._in_flight: collections.Counter[str] = collections.Counter()

    def _detail(self) -> str:
        return (
            f"{self.per_client} uploads in flight from this client already: a client may have at most "
            f"{self.per_client} searches under way at once (api.uploads_per_client); retry once one is answered"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("",))[0]
        if self._in_flight[client] >= self.per_client:
            await answer(scope, send, 429, self._detail(), {"retry-after": str(RETRY_AFTER)})
            return
        self._in_flight[client] += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._in_flight[client] -= 1
                if not self._in_flight[client]:
                    del self._in_flight[client]

        async def send_then_release(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_then_release)
        finally:
            release()
