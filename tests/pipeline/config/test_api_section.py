"""The ``api`` section: its search bounds default to the library's and reach the app; ids and keys follow
their patterns."""

from __future__ import annotations

import dataclasses

import pytest

from crosscam.errors import ConfigError
from pipeline.cli.api import search_limits
from pipeline.config import CrosscamConfig, load_config
from pipeline.serve.uploads import SearchLimits

RENAMED = {"concurrency": "search_concurrency"}


def test_the_search_bounds_default_to_the_library_and_reach_it():
    defaults = CrosscamConfig().api
    for field in dataclasses.fields(SearchLimits):
        assert getattr(defaults, RENAMED.get(field.name, field.name)) == field.default, field.name
    assert search_limits(CrosscamConfig()) == SearchLimits()
    config = load_config(
        None, ["api.max_images=2", "api.max_pixels=1000", "api.search_concurrency=1", "api.uploads_per_client=1"]
    )
    assert search_limits(config) == SearchLimits(max_images=2, max_pixels=1000, concurrency=1, uploads_per_client=1)


@pytest.mark.parametrize(
    "override",
    [
        "cameras=[{id: '<img src=x>', source: 'synth://'}]",
        "cameras=[{id: 'a:b', source: 'synth://'}]",
        f"cameras=[{{id: {'x' * 129}, source: 'synth://'}}]",
        "matcher.topology=[{from: '<b>', to: hall, max: 3}]",
        "api.key='with space'",
        "api.max_pixels=2000000000",
    ],
)
def test_ids_keys_and_bounds_outside_their_patterns_are_config_errors(override):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert "invalid configuration" in str(e.value)


def test_a_camera_id_of_the_pattern_is_accepted():
    config = load_config(None, ["cameras=[{id: Door-2.north_x, source: 'synth://'}]"])
    assert config.cameras[0].id == "Door-2.north_x"
