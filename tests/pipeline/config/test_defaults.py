"""Every configuration default equals the default of the library argument it configures, so a site built
from an empty config behaves like the library classes built with no arguments (tests and benchmarks that
use the classes directly run what production runs)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from pipeline.bus.publisher import Publisher
from pipeline.camera.sources import Reconnect, Source
from pipeline.camera.tracking import DetectorOptions
from pipeline.camera.tracklets import TrackletPolicy
from pipeline.config import CrosscamConfig
from pipeline.embedding import EmbeddingService
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.ground import GroundPlane
from pipeline.matcher.rules import MatchPolicy, Topology
from pipeline.site import embedder_path
from pipeline.store.queries import persons

DEFAULTS = CrosscamConfig()


def dataclass_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def argument_defaults(fn) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def section(name: str) -> dict:
    return getattr(DEFAULTS, name).model_dump()


# (config section, its key, the library default it must equal)
PAIRS = [
    *[("detector", k, v) for k, v in dataclass_defaults(DetectorOptions).items()],
    *[
        ("tracklets", k, v)
        for k, v in dataclass_defaults(TrackletPolicy).items()
        if k not in ("frames", "crop_height", "crop_width")
    ],
    *[
        ("matcher", k, v)
        for k, v in dataclass_defaults(MatchPolicy).items()
        if k not in ("threshold", "topology", "ground")
    ],
    *[
        ("matcher", k, argument_defaults(Matcher.__init__)[k])
        for k in ("batch", "claim_idle", "merge_every", "ttl", "lease", "reorder_window")
    ],
    ("matcher", "transit_penalty", Topology.penalty),
    ("matcher", "ground_near", GroundPlane.near),
    ("matcher", "ground_far", GroundPlane.far),
    ("matcher", "transit_penalty", argument_defaults(Topology.parse)["penalty"]),
    ("matcher", "topology_mode", "soft" if Topology.soft else "hard"),
    ("matcher", "topology_mode", argument_defaults(Topology.parse)["mode"]),
    ("embedder", "max_wait", argument_defaults(EmbeddingService.__init__)["max_wait"]),
    ("matcher", "tentative_seconds", argument_defaults(persons)["tentative_seconds"]),
    ("redis", "maxlen", argument_defaults(Publisher.__init__)["maxlen"]),
    ("redis", "backlog", argument_defaults(EmbeddingService.__init__)["backlog"]),
    *[("redis", k, argument_defaults(Publisher.__init__)[k]) for k in ("replicas", "replica_timeout")],
    *[("redis", k, argument_defaults(Matcher.__init__)[k]) for k in ("replicas", "replica_timeout")],
    ("source", "buffer", argument_defaults(Source.__init__)["capacity"]),
    ("source", "reconnect_initial", Reconnect.initial),
    ("source", "reconnect_max", Reconnect.max_delay),
    ("source", "reconnect_attempts", Reconnect.max_attempts),
]


@pytest.mark.parametrize(("name", "key", "library"), PAIRS, ids=[f"{n}.{k}" for n, k, _ in PAIRS])
def test_config_default_equals_the_library_default(name, key, library):
    assert key in section(name), f"{name}.{key}: the library has this option and the config does not"
    assert section(name)[key] == library, f"{name}.{key}: config {section(name)[key]!r}, library {library!r}"


def test_every_option_of_the_detector_and_tracklet_sections_reaches_the_library():
    """The sections map onto the classes by name (``pipeline.site`` passes them across whole)."""
    assert set(section("detector")) == set(dataclass_defaults(DetectorOptions))
    sized = {"frames", "crop_height", "crop_width"}  # the embedder's input decides these
    assert set(section("tracklets")) == set(dataclass_defaults(TrackletPolicy)) - sized


def test_the_link_threshold_without_a_model_or_config_is_the_policy_default():
    assert DEFAULTS.matcher.threshold is None
    assert DEFAULTS.matcher.policy().threshold == MatchPolicy().threshold
    assert DEFAULTS.matcher.policy() == MatchPolicy()


def test_the_default_embedder_is_the_bundled_model():
    from models.zoo import default_embedder

    assert DEFAULTS.embedder.path is None and embedder_path(None, DEFAULTS) == default_embedder()
