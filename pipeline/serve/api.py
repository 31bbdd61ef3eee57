"""The HTTP API (FastAPI; OpenAPI at ``/docs``) and the web page, over the same store as the CLI.

Every ``/api`` route needs the key in the ``X-API-Key`` header (401 without it). The server binds
127.0.0.1 unless told otherwise. The page at ``/`` asks for the key once and keeps it in the browser.
"""

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader

from pipeline import store
from pipeline.bus.publisher import camera_status
from pipeline.embedding import decode_image, embed_images
from pipeline.keys import Keys
from pipeline.matcher.gallery import Gallery

PAGE = Path(__file__).with_name("web") / "index.html"


class _GalleryCache:
    """The API's copy of the gallery, reloaded when the site's identities change (one MGET of the store's
    version and epoch per search)."""

    def __init__(self, client, keys: Keys) -> None:
        self.client, self.keys, self.stamp, self.gallery = client, keys, None, Gallery()

    def get(self) -> Gallery:
        stamp = tuple(self.client.mget(self.keys.version, self.keys.epoch))
        if stamp != self.stamp:
            self.gallery, self.stamp = store.load_gallery(self.client, self.keys), stamp
        return self.gallery


def create_app(client, keys: Keys, api_key: str, embedder=None):
    skeys = Keys(keys.site, keys.prefix)
    cache = _GalleryCache(client, skeys)
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

    @app.get("/api/cameras", dependencies=[Depends(authorised)])
    def cameras():
        ids = sorted(c.decode() for c in client.smembers(keys.cameras))
        return {"site": keys.site, "cameras": [{"camera": c, **camera_status(client, keys, c)} for c in ids]}

    @app.get("/api/persons", dependencies=[Depends(authorised)])
    def persons(camera: str | None = None, since: float | None = None, limit: int = Query(100, ge=1, le=10_000)):
        return {"site": keys.site, "persons": store.persons(client, skeys, camera, since, limit)}

    @app.get("/api/persons/{person}", dependencies=[Depends(authorised)])
    def history(person: int):
        return store.history(client, skeys, person)

    @app.get("/api/sightings/{sighting}", dependencies=[Depends(authorised)])
    def explain(sighting: str):
        return store.explain(client, skeys, sighting)

    @app.get("/api/sightings/{sighting}/thumbnail", dependencies=[Depends(authorised)])
    def thumbnail(sighting: str):
        return Response(store.thumbnail(client, skeys, sighting), media_type="image/jpeg")

    @app.post("/api/search", dependencies=[Depends(authorised)])
    async def search(images: Annotated[list[UploadFile], File()], top_k: Annotated[int, Query(ge=1, le=100)] = 5):
        if embedder is None:
            raise HTTPException(503, "search needs the re-ID model: start the API with --embedder")
        crops = []
        for upload in images:
            image = decode_image(await upload.read())
            if image is None:
                raise HTTPException(400, f"{upload.filename}: not an image (send JPEG or PNG crops of one person)")
            crops.append(image)
        return {"results": store.search_histories(client, skeys, cache.get(), embed_images(embedder, crops), top_k)}

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
