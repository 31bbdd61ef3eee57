"""The store: identities, sightings and per-camera timelines in Redis (keys: ``pipeline.keys``).

``writes`` is the matcher's side, ``queries`` what the CLI, the API and the report read, ``maintenance``
what a user changes (``unlink``, ``prune``); those two return the frozen, typed views of ``views``.
Retention: with ``matcher.ttl`` set, sighting and identity keys expire that long after their last write;
``prune`` removes sightings ingested before a cut-off together with their index entries.
"""

from pipeline.store.fields import NotFound
from pipeline.store.maintenance import prune, unlink
from pipeline.store.queries import explain, history, persons, resolve, search, search_histories, sighting, thumbnail
from pipeline.store.views import (
    Explanation,
    History,
    MergeStep,
    PersonSummary,
    PruneResult,
    SearchHit,
    SightingView,
    StoredDecision,
    UnlinkResult,
)
from pipeline.store.writes import (
    cannot_link,
    identity_ids,
    load_gallery,
    next_identities,
    processed,
    write_links,
    write_merge,
)

__all__ = [
    "Explanation",
    "History",
    "MergeStep",
    "NotFound",
    "PersonSummary",
    "PruneResult",
    "SearchHit",
    "SightingView",
    "StoredDecision",
    "UnlinkResult",
    "cannot_link",
    "explain",
    "history",
    "identity_ids",
    "load_gallery",
    "next_identities",
    "persons",
    "processed",
    "prune",
    "resolve",
    "search",
    "search_histories",
    "sighting",
    "thumbnail",
    "unlink",
    "write_links",
    "write_merge",
]
