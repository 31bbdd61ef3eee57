"""The HTTP API (FastAPI; OpenAPI at ``/docs``) and the web page, over the same store as the CLI.

Every ``/api`` route needs the key in the ``X-API-Key`` header (401 without it, answered from the headers
before any body is read: ``pipeline.serve.auth``) and answers with a response model of
``pipeline.serve.schemas``; while Redis cannot be reached, 503 with ``Retry-After`` (the routes work again
as soon as it is back). The server binds 127.0.0.1 unless told otherwise. The page at
``/`` asks for the key once and keeps it in the browser; it renders every stored value as text, and every
response carries a strict Content-Security-Policy (``pipeline.serve.headers``). Camera and sighting ids in
paths and queries must follow ``pipeline.ids``. A search's uploads are bounded (``pipeline.serve.uploads``),
as are the searches one client has under way (``pipeline.serve.slots``), and they are decoded and embedded off the event loop, a few at a time, so other requests never wait for one.
"""

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import cv2
import redis
from fastapi import Depends, FastAPI, File, HTTPException, Query, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader

from crosscam.redact import redact
from pipeline import store
from pipeline.bus.connect import Client
from pipeline.embedding import decode_image, embed_images
from pipeline.ids import CAMERA_ID, SIGHTING_ID
from pipeline.keys import Keys
from pipeline.serve.auth import HEADER, UNAUTHORISED, ApiKeyGate, key_matches
from pipeline.serve.cameras import camera_statuses
from pipeline.serve.gallery_cache import GalleryCache
from pipeline.serve.headers import SecurityHeaders
from pipeline.serve.schemas import (
    CamerasResponse,
    ErrorResponse,
    Explanation,
    History,
    PersonsResponse,
    SearchResponse,
)
from pipeline.store.fields import TENTATIVE_SECONDS

if TYPE_CHECKING:
    from models.embedder import Embedder

from pipeline.serve.slots import UploadSlots
from pipeline.serve.uploads import BodyLimit, SearchLimits, check_count, check_pixels, check_size

log = logging.getLogger(__name__)

WEB = Path(__file__).with_name("web")
PAGE = WEB / "index.html"
ASSETS = {"/app.js": (WEB / "app.js", "text/javascript"), "/style.css": (WEB / "style.css", "text/css")}
SightingId = Annotated[str, PathParam(pattern=SIGHTING_ID, description="camera:track:seq")]


UNREACHABLE = "the site's Redis cannot be reached: try again shortly"
RETRY_UNREACHABLE = 5  # seconds: Retry-After while Redis cannot be reached

_ERRORS = {
    401: {"model": ErrorResponse, "description": "missing or wrong API key"},
    503: {"model": ErrorResponse, "description": "the site's Redis cannot be reached (Retry-After says when to try)"},
}
_NOT_FOUND = _ERRORS | {404: {"model": ErrorResponse, "description": "no such person or sighting (or expired)"}}
_JPEG = {
    200: {
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the sighting's thumbnail (JPEG)",
    }
}


def _asset(path: Path, media_type: str):
    """A route that answers with one of the page's files."""

    def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type)

    return asset


def create_app(
    client: Client,
    keys: Keys,
    api_key: str,
    embedder: "Embedder | None" = None,
    limits: SearchLimits | None = None,
    tentative_seconds: float = TENTATIVE_SECONDS,
) -> FastAPI:
    """The API and page for the site of ``keys``; ``embedder`` (the workers' model) enables search, with
    uploads bounded by ``limits``; ``tentative_seconds``: which persons are tentative (``store.persons``)."""
    limits = limits or SearchLimits()
    cache = GalleryCache(lambda: store.load_gallery(client, keys), lambda: tuple(client.mget(keys.version, keys.epoch)))
    app = FastAPI(title="crosscam", description="Where else was this person seen, and when.", version="1")
    # the last added runs first: headers on every answer, then the key, then the bounds, then the route
    app.add_middleware(UploadSlots, path="/api/search", per_client=limits.uploads_per_client)
    app.add_middleware(BodyLimit, path="/api/search", limit=limits.max_request_bytes)
    app.add_middleware(ApiKeyGate, key=api_key)
    app.add_middleware(SecurityHeaders)
    header = APIKeyHeader(name=HEADER, auto_error=False)
    expected = api_key.encode("utf-8")
    searching = anyio.CapacityLimiter(limits.concurrency)

    def authorised(key: str | None = Depends(header)) -> None:
        # Starlette decodes a header as Latin-1: encoding it back gives the bytes that were sent
        if not key_matches(None if key is None else key.encode("latin-1", "replace"), expected):
            raise HTTPException(401, UNAUTHORISED)

    @app.exception_handler(store.NotFound)
    def not_found(request, e: store.NotFound):
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(redis.ConnectionError)  # a BusyLoadingError (a restarted Redis loading) is one too
    @app.exception_handler(redis.TimeoutError)
    def unreachable(request, e: redis.RedisError):
        log.warning(
            "%s %s answered 503: Redis cannot be reached (%s)", request.method, request.url.path, redact(str(e))
        )
        return JSONResponse({"detail": UNREACHABLE}, status_code=503, headers={"Retry-After": str(RETRY_UNREACHABLE)})

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(PAGE, media_type="text/html")

    for route, (path, media_type) in ASSETS.items():
        app.add_api_route(route, _asset(path, media_type), include_in_schema=False)

    # a camera's status lists only the fields its worker wrote
    @app.get(
        "/api/cameras",
        dependencies=[Depends(authorised)],
        response_model=CamerasResponse,
        response_model_exclude_unset=True,
        responses=_ERRORS,
    )
    def cameras() -> CamerasResponse:
        return CamerasResponse(site=keys.site, cameras=camera_statuses(client, keys))

    @app.get("/api/persons", dependencies=[Depends(authorised)], response_model=PersonsResponse, responses=_ERRORS)
    def persons(
        camera: Annotated[str | None, Query(pattern=CAMERA_ID)] = None,
        since: Annotated[float | None, Query(allow_inf_nan=False, description="stream time, seconds")] = None,
        limit: int = Query(100, ge=1, le=10_000),
        all: bool = Query(False, description="also tentative persons (one camera, a moment: possibly no one)"),
    ) -> PersonsResponse:
        found = store.persons(client, keys, camera, since, limit, tentative_seconds, everyone=all)
        return PersonsResponse(site=keys.site, persons=found)

    @app.get("/api/persons/{person}", dependencies=[Depends(authorised)], response_model=History, responses=_NOT_FOUND)
    def history(person: int) -> History:
        return store.history(client, keys, person)

    @app.get(
        "/api/sightings/{sighting}",
        dependencies=[Depends(authorised)],
        response_model=Explanation,
        responses=_NOT_FOUND,
    )
    def explain(sighting: SightingId) -> Explanation:
        return store.explain(client, keys, sighting)

    @app.get(
        "/api/sightings/{sighting}/thumbnail",
        dependencies=[Depends(authorised)],
        response_class=Response,
        responses=_NOT_FOUND | _JPEG,
    )
    def thumbnail(sighting: SightingId) -> Response:
        return Response(store.thumbnail(client, keys, sighting), media_type="image/jpeg")

    @app.post(
        "/api/search",
        dependencies=[Depends(authorised)],
        response_model=SearchResponse,
        responses=_ERRORS
        | {
            400: {"model": ErrorResponse, "description": "an upload that is not an image"},
            409: {"model": ErrorResponse, "description": "the API's model makes features of another size"},
            413: {"model": ErrorResponse, "description": "too many images, bytes or pixels (the api.max_* keys)"},
            429: {"model": ErrorResponse, "description": "this client has api.uploads_per_client searches under way"},
            503: {
                "model": ErrorResponse,
                "description": "the API was started without the re-ID model, or the site's Redis cannot be reached",
            },
        },
    )
    async def search(
        images: Annotated[list[UploadFile], File()], top_k: Annotated[int, Query(ge=1, le=100)] = 5
    ) -> SearchResponse:
        if embedder is None:
            raise HTTPException(503, "search needs the re-ID model: start the API with --embedder")
        check_count(len(images), limits)
        for upload in images:
            if upload.size is not None:
                check_size(upload.filename or "image", upload.size, limits)
        # decoding and embedding run on worker threads, at most limits.concurrency searches at once
        return await anyio.to_thread.run_sync(_search, images, top_k, limiter=searching)

    def _search(images: list[UploadFile], top_k: int) -> SearchResponse:
        spec = embedder.spec.input
        crops = []
        for upload in images:
            name = upload.filename or "image"
            upload.file.seek(0)
            data = upload.file.read(limits.max_image_bytes + 1)
            check_size(name, len(data), limits)
            check_pixels(name, data, limits)
            image = decode_image(data)
            if image is None:
                raise HTTPException(400, f"{name}: not an image (send JPEG or PNG crops of one person)")
            crops.append(cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_AREA))
            del image
        feature = embed_images(embedder, crops)
        gallery = cache.get()
        if gallery.dim is not None and feature.shape[-1] != gallery.dim:
            raise HTTPException(
                409,
                f"the API's model makes {feature.shape[-1]}-d features but the site's identities hold "
                f"{gallery.dim}-d features: start the API with the model the site's workers use (--embedder)",
            )
        return SearchResponse(results=store.search_histories(client, keys, gallery, feature, top_k))

    return app


def serve(app, host: str, port: int):
    """Run ``app`` with uvicorn in a background thread; returns (server, thread, port)."""
    import socket
    import threading
    import time

    import uvicorn

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, port
