"""The HTTP API (FastAPI; OpenAPI at ``/docs``) and the web page, over the same store as the CLI.

Every ``/api`` route needs the key in the ``X-API-Key`` header (401 without it) and answers with a
response model of ``pipeline.serve.schemas``. The server binds 127.0.0.1 unless told otherwise. The page at
``/`` asks for the key once and keeps it in the browser.
"""

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader

from pipeline import store
from pipeline.bus.connect import Client
from pipeline.bus.publisher import camera_status
from pipeline.embedding import decode_image, embed_images
from pipeline.keys import Keys, text
from pipeline.matcher.gallery import Gallery
from pipeline.serve.schemas import (
    CamerasResponse,
    CameraStatus,
    ErrorResponse,
    Explanation,
    History,
    PersonsResponse,
    SearchResponse,
)

if TYPE_CHECKING:
    from models.embedder import Embedder

PAGE = Path(__file__).with_name("web") / "index.html"


class _GalleryCache:
    """The API's copy of the gallery, reloaded when the site's identities change (one MGET of the store's
    version and epoch per search)."""

    def __init__(self, client: Client, keys: Keys) -> None:
        self.client, self.keys, self.stamp, self.gallery = client, keys, None, Gallery()

    def get(self) -> Gallery:
        stamp = tuple(self.client.mget(self.keys.version, self.keys.epoch))
        if stamp != self.stamp:
            self.gallery, self.stamp = store.load_gallery(self.client, self.keys), stamp
        return self.gallery


_ERRORS = {401: {"model": ErrorResponse, "description": "missing or wrong API key"}}
_NOT_FOUND = _ERRORS | {404: {"model": ErrorResponse, "description": "no such person or sighting (or expired)"}}
_JPEG = {
    200: {
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the sighting's thumbnail (JPEG)",
    }
}


def create_app(client: Client, keys: Keys, api_key: str, embedder: "Embedder | None" = None) -> FastAPI:
    """The API and page for the site of ``keys``; ``embedder`` (the workers' model) enables search."""
    cache = _GalleryCache(client, keys)
    app = FastAPI(title="crosscam", description="Where else was this person seen, and when.", version="1")
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def authorised(key: str | None = Depends(header)) -> None:
        if key is None or not secrets.compare_digest(key, api_key):
            raise HTTPException(401, "missing or wrong API key: send it in the X-API-Key header")

    @app.exception_handler(store.NotFound)
    def not_found(request, e: store.NotFound):
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(PAGE, media_type="text/html")

    # a camera's status lists only the fields its worker wrote
    @app.get(
        "/api/cameras",
        dependencies=[Depends(authorised)],
        response_model=CamerasResponse,
        response_model_exclude_unset=True,
        responses=_ERRORS,
    )
    def cameras() -> CamerasResponse:
        ids = sorted(text(c) for c in client.smembers(keys.cameras))
        statuses = [CameraStatus(camera=c, **camera_status(client, keys, c)) for c in ids]
        return CamerasResponse(site=keys.site, cameras=statuses)

    @app.get("/api/persons", dependencies=[Depends(authorised)], response_model=PersonsResponse, responses=_ERRORS)
    def persons(
        camera: str | None = None, since: float | None = None, limit: int = Query(100, ge=1, le=10_000)
    ) -> PersonsResponse:
        return PersonsResponse(site=keys.site, persons=store.persons(client, keys, camera, since, limit))

    @app.get("/api/persons/{person}", dependencies=[Depends(authorised)], response_model=History, responses=_NOT_FOUND)
    def history(person: int) -> History:
        return store.history(client, keys, person)

    @app.get(
        "/api/sightings/{sighting}",
        dependencies=[Depends(authorised)],
        response_model=Explanation,
        responses=_NOT_FOUND,
    )
    def explain(sighting: str) -> Explanation:
        return store.explain(client, keys, sighting)

    @app.get(
        "/api/sightings/{sighting}/thumbnail",
        dependencies=[Depends(authorised)],
        response_class=Response,
        responses=_NOT_FOUND | _JPEG,
    )
    def thumbnail(sighting: str) -> Response:
        return Response(store.thumbnail(client, keys, sighting), media_type="image/jpeg")

    @app.post(
        "/api/search",
        dependencies=[Depends(authorised)],
        response_model=SearchResponse,
        responses=_ERRORS
        | {
            400: {"model": ErrorResponse, "description": "an upload that is not an image"},
            503: {"model": ErrorResponse, "description": "the API was started without the re-ID model"},
        },
    )
    async def search(
        images: Annotated[list[UploadFile], File()], top_k: Annotated[int, Query(ge=1, le=100)] = 5
    ) -> SearchResponse:
        if embedder is None:
            raise HTTPException(503, "search needs the re-ID model: start the API with --embedder")
        crops = []
        for upload in images:
            image = decode_image(await upload.read())
            if image is None:
                raise HTTPException(400, f"{upload.filename}: not an image (send JPEG or PNG crops of one person)")
            crops.append(image)
        feature = embed_images(embedder, crops)
        return SearchResponse(results=store.search_histories(client, keys, cache.get(), feature, top_k))

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
