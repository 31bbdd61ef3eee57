"""The cameras' statuses as the API shows them: every stored byte as text, whatever a worker (or anyone
with write access to Redis) put there.

Camera ids come from the site's camera set and their statuses from each camera's hash. Bytes that are not
UTF-8, in an id, a field name or a value, are shown with backslash escapes (``b"cam\\xff"`` is
``cam\\xff``); credentials in values are redacted (``crosscam.redact``), also in statuses stored before.
A field named ``camera`` in a hash is left out: the response's ``camera`` is the id from the set.
"""

from __future__ import annotations

from crosscam.redact import redact
from pipeline.bus.connect import Client
from pipeline.keys import Keys, shown
from pipeline.serve.schemas import CameraStatus


def status_key(keys: Keys, camera: bytes) -> bytes:
    """The key of the status hash of a camera id given as its stored bytes (any bytes, UTF-8 or not)."""
    return keys.camera(camera.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def camera_statuses(client: Client, keys: Keys) -> list[CameraStatus]:
    """Every camera in the site's set, with the fields its status hash holds, ordered by id."""
    statuses = []
    for member in client.smembers(keys.cameras):
        camera = member if isinstance(member, bytes) else str(member).encode()
        stored = {shown(k): redact(shown(v)) for k, v in client.hgetall(status_key(keys, camera)).items()}
        stored.pop("camera", None)
        statuses.append(CameraStatus.model_validate({**stored, "camera": shown(camera)}))
    return sorted(statuses, key=lambda s: s.camera)
