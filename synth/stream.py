"""One camera of a synthetic scene, read like a video file (``synth://...&camera=N``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np

from crosscam.errors import CrosscamError
from pipeline.camera.sources import SourceError, SourceType
from synth.scene import Scene, SceneSpec


def parse_synth_url(url: str) -> tuple[SceneSpec, int]:
    """The scene and the camera index of a ``synth://`` URL (``camera`` defaults to 0)."""
    query = parse_qs(urlparse(url).query)
    camera = query.pop("camera", ["0"])[-1]
    try:
        spec = SceneSpec.from_url("synth://?" + urlencode({k: v[-1] for k, v in query.items()}), label=url)
        index = int(camera)
    except ValueError as e:
        raise SourceError(f"{url}: bad synth:// camera ({e})") from e
    except CrosscamError as e:  # SceneSpec's errors already name the URL and the parameter
        raise SourceError(str(e)) from e
    if not 0 <= index < spec.cameras:
        raise SourceError(f"{url}: camera {index} does not exist; the scene has cameras 0..{spec.cameras - 1}")
    return spec, index


class SynthCapture:
    """The ``VideoCapture`` interface over a rendered scene: frames at the scene's fps until it ends."""

    def __init__(self, url: str) -> None:
        spec, self.camera = parse_synth_url(url)
        self.scene = Scene(spec)
        self.frame_count = self.scene.frame_count()
        self.fps = spec.fps
        self.index = 0

    def opened(self) -> bool:
        return True

    def read(self) -> tuple[bool, np.ndarray | None, float]:
        if self.index >= self.frame_count:
            return False, None, self.index / self.fps
        image, _ = self.scene.render(self.camera, self.index)
        self.index += 1
        return True, image, (self.index - 1) / self.fps

    def position(self) -> int:
        return self.index

    def release(self) -> None:
        pass


SYNTH = SourceType(check=parse_synth_url, open=SynthCapture)
"""``synth://`` sources for ``pipeline.camera.sources.open_source(..., types={"synth": SYNTH})``."""
