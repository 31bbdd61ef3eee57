"""The HTTP API's response models: what each ``/api`` route answers, as OpenAPI documents it.

A person's history, a sighting's explanation and a search hit are the store's own views
(``pipeline.store.views``); the envelopes around them and the camera status are defined here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipeline.store.views import Explanation, History, PersonSummary, SearchHit

__all__ = [
    "CameraStatus",
    "CamerasResponse",
    "ErrorResponse",
    "Explanation",
    "History",
    "PersonsResponse",
    "SearchResponse",
]


class Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class CameraStatus(Response):
    """A camera's status hash as its worker wrote it (``Publisher.camera_status``): every value a string as
    stored; a field the worker has not written yet is left out, and counters it adds are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")

    camera: str
    state: str | None = Field(None, description="connecting, streaming, reconnecting, failed, ended or stopped")
    since: str | None = Field(None, description="wall-clock time the camera entered its state")
    heartbeat: str | None = Field(None, description="wall-clock time of the worker's last status")
    error: str | None = Field(None, description="the source's last error, empty when none")
    frames: str | None = Field(None, description="frames read")
    fps: str | None = Field(None, description="frames per second processed")
    tracklets: str | None = Field(None, description="tracklets closed")
    dropped_frames: str | None = Field(None, description="frames the source's buffer dropped")
    watermark: str | None = Field(
        None, description="stream time before which the camera will publish no more tracklets ('inf': it ended)"
    )


class CamerasResponse(Response):
    """Every camera of the site that has reported, by id."""

    site: str
    cameras: list[CameraStatus]


class PersonsResponse(Response):
    """Persons seen, most recently seen first."""

    site: str
    persons: list[PersonSummary]


class SearchResponse(Response):
    """The persons nearest to the uploaded crops, best first."""

    results: list[SearchHit]


class ErrorResponse(Response):
    """A request the API cannot answer, and why."""

    detail: str
