"""Bounds on what a search request may upload, checked before the work they would cost.

- The request body: ``BodyLimit`` answers 413 when the declared ``Content-Length`` is too large, before
  anything is read, and stops reading a body without one as soon as it passes the limit.
- Each image: its encoded size, then its width and height read from the file's header (Pillow opens images
  lazily: ``Image.open`` parses the header, it decodes nothing), before it is decoded.
- Searches under way per client: ``pipeline.serve.slots`` (``uploads_per_client``).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.serve.asgi import answer


@dataclass(frozen=True)
class SearchLimits:
    """What one search request may upload (the ``api`` config section's keys of the same names)."""

    max_images: int = 16
    max_image_bytes: int = 8_000_000
    max_request_bytes: int = 32_000_000
    max_pixels: int = 16_000_000
    concurrency: int = 2
    uploads_per_client: int = 4


def too_large(detail: str) -> HTTPException:
    return HTTPException(413, detail)


def check_count(count: int, limits: SearchLimits) -> None:
    if count > limits.max_images:
        raise too_large(f"{count} images: a search takes at most {limits.max_images} (api.max_images)")


def check_size(name: str, size: int, limits: SearchLimits) -> None:
    if size > limits.max_image_bytes:
        raise too_large(
            f"{name}: {size} bytes, more than the {limits.max_image_bytes} one image may have (api.max_image_bytes); "
            "send a crop of the person"
        )


def _pillow_open():
    """Pillow's own ``Image.open``. Ultralytics replaces it, once imported, with one that installs a HEIF
    plugin from PyPI (``pip``) the first time Pillow cannot identify a file: a request must never do that."""
    from PIL import Image

    try:
        from ultralytics.utils import patches
    except ImportError:
        return Image.open
    return getattr(patches, "_image_open", Image.open)


def check_pixels(name: str, data: bytes, limits: SearchLimits) -> None:
    """413 when the image's header declares more than ``max_pixels`` pixels; 400 when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _pillow_open()(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as e:  # Pillow's own bound, far above ours: its message has the count
        found = re.search(r"\((\d+) pixels\)", str(e))
        raise too_large(
            f"{name}: {found.group(1) + ' pixels, ' if found else ''}more than the {limits.max_pixels} pixels one "
            "image may have (api.max_pixels); send a crop of the person"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise HTTPException(400, f"{name}: not an image (send JPEG or PNG crops of one person)") from e
    if width * height > limits.max_pixels:
        raise too_large(
            f"{name}: {width}x{height} = {width * height} pixels, more than the {limits.max_pixels} pixels one "
            "image may have (api.max_pixels); send a crop of the person"
        )


class BodyLimit:
    """ASGI middleware: a request to ``path`` whose body is larger than ``limit`` bytes gets 413."""

    def __init__(self, app: ASGIApp, path: str, limit: int) -> None:
        self.app, self.path, self.limit = app, path, limit

    def _detail(self, size: str) -> str:
        return (
            f"request body of {size} bytes: a search request may have at most {self.limit} "
            "(api.max_request_bytes); send fewer or smaller images"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await answer(scope, send, 413, self._detail(declared.decode("latin-1")))
            return
        read = 0

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.limit:
                    raise too_large(self._detail(f"more than {self.limit}"))
            return message

        await self.app(scope, counted, send)
