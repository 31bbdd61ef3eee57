"""The one spelling of a camera id and a sighting id, checked wherever one enters crosscam.

A camera id is 1 to 128 letters, digits, ``_``, ``.`` or ``-``; a sighting id is its tracklet's id,
``camera:track:seq`` (two non-negative integers). The site config, ``worker --camera``, ``run`` and the HTTP
API's path and query parameters all check these patterns, so an id never carries markup, spaces or a
Redis key separator into a key, a log line or the web page.
"""

from __future__ import annotations

import re

CAMERA_ID = r"^[A-Za-z0-9_.-]{1,128}$"
SIGHTING_ID = r"^[A-Za-z0-9_.-]{1,128}:[0-9]{1,19}:[0-9]{1,19}$"
CAMERA_ID_RULE = "1 to 128 letters, digits, '_', '.' or '-'"

_CAMERA = re.compile(CAMERA_ID)
_SIGHTING = re.compile(SIGHTING_ID)


def is_camera_id(value: str) -> bool:
    return bool(_CAMERA.fullmatch(value))


def is_site_name(value: str) -> bool:
    """A site name follows the camera id's spelling: it is the hash tag of every key of the site, so braces,
    ``*`` or ``?`` would split its keys over cluster slots or make its key pattern match other sites'."""
    return bool(_CAMERA.fullmatch(value))


def is_sighting_id(value: str) -> bool:
    return bool(_SIGHTING.fullmatch(value))
