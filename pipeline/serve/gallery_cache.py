"""The API's copy of the site's gallery, for search, reloaded in the background.

``get`` costs one round trip (the store's version and epoch, one MGET) and answers with the copy loaded
last. When the site's identities changed since, a background thread loads a new copy (one at a time) and the
next search uses it; only the very first search waits for a load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable

from pipeline.matcher.gallery import Gallery

log = logging.getLogger(__name__)


class GalleryCache:
    def __init__(self, load: Callable[[], Gallery], stamp: Callable[[], Hashable]) -> None:
        self._load, self._stamp = load, stamp
        self._lock = threading.Lock()
        self._gallery: Gallery | None = None
        self._loaded: Hashable = None  # the stamp the gallery was loaded at
        self._refresh: threading.Thread | None = None

    def get(self) -> Gallery:
        """The last loaded gallery; starts a background reload when the site's stamp moved. Blocking: call it
        off the event loop."""
        stamp = self._stamp()
        with self._lock:
            if self._gallery is None:
                self._gallery, self._loaded = self._load(), stamp
            elif stamp != self._loaded and not (self._refresh and self._refresh.is_alive()):
                self._refresh = threading.Thread(target=self._reload, args=(stamp,), name="gallery-reload", daemon=True)
                self._refresh.start()
            return self._gallery

    def _reload(self, stamp: Hashable) -> None:
        try:
            gallery = self._load()
        except Exception:  # the next search tries again; this one keeps the last copy
            log.warning("reloading the gallery failed; searches use the last loaded copy", exc_info=True)
            return
        with self._lock:
            self._gallery, self._loaded = gallery, stamp

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background reload in progress (tests, shutdown)."""
        refresh = self._refresh
        if refresh is not None:
            refresh.join(timeout)
