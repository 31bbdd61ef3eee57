"""What a synthetic scene is made of (``SceneSpec``), and its ``synth://`` URL form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlparse

from crosscam.errors import CrosscamError
from synth.layout import LAYOUTS

Pairs = tuple[tuple[int, int], ...]


def parse_pairs(text: str) -> Pairs:
    """``"0-1,2-3"`` -> ``((0, 1), (2, 3))`` (an empty text: no pairs); a ValueError names a bad pair."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        a, sep, b = part.partition("-")
        if not sep or not a.strip().isdigit() or not b.strip().isdigit():
            raise ValueError(f"overlap {part!r} is not two camera indices joined by '-', e.g. 0-1")
        pairs.append((int(a), int(b)))
    return tuple(pairs)


def format_pairs(pairs: Pairs) -> str:
    return ",".join(f"{a}-{b}" for a, b in pairs)


@dataclass(frozen=True)
class SceneSpec:
    """A scene: ``people`` walk through the views of ``cameras`` cameras for ``seconds`` (``fps`` frames a
    second of ``width`` x ``height`` pixels); ``seated`` more stay put in one view each (``synth.seated``);
    ``layout`` says which views overlap (``overlap``: camera pairs, ``site`` layout only) and how long the walk
    between two views takes (``synth.layout``). The same spec gives the same scene, to the pixel."""

    cameras: int = 3
    people: int = 8
    seconds: float = 60.0
    seed: int = 1
    fps: float = 10.0
    width: int = 480
    height: int = 270
    arrivals: float = 0.25  # people enter their first camera within this share of the scene
    seated: int = 0  # people who sit or stand still in one camera's view
    layout: str = "apart"  # "apart": no overlap, any transit APART_TRANSIT; "site": overlaps and per-pair windows
    overlap: Pairs = ()  # camera pairs that share a view (site layout)

    def check(self, name: str) -> SceneSpec:
        """This spec, or a CrosscamError naming ``name`` and the value to change."""
        if self.cameras < 1 or self.people < 1 or self.seconds <= 0 or self.fps <= 0 or not 0 < self.arrivals <= 1:
            raise CrosscamError(f"{name}: cameras, people, seconds and fps must be positive, arrivals in (0, 1]")
        if self.width < 16 or self.height < 16:
            raise CrosscamError(f"{name}: width and height must be at least 16 pixels")
        if self.seated < 0:
            raise CrosscamError(f"{name}: seated must be 0 or more")
        if self.layout not in LAYOUTS:
            raise CrosscamError(f"{name}: unknown layout {self.layout!r}; use one of {', '.join(LAYOUTS)}")
        if self.overlap and self.layout != "site":
            raise CrosscamError(f"{name}: overlap needs layout=site (the {self.layout} layout has no overlaps)")
        for a, b in self.overlap:
            if a == b or not (0 <= a < self.cameras and 0 <= b < self.cameras):
                raise CrosscamError(f"{name}: overlap {a}-{b} must join two different cameras of 0..{self.cameras - 1}")
        return self

    @classmethod
    def from_url(cls, url: str, label: str | None = None) -> SceneSpec:
        """``synth://?cameras=3&people=8&seconds=60&seed=1&seated=2&layout=site&overlap=0-1`` (every key
        optional); errors name ``label`` or ``url``."""
        name = label or url
        query = parse_qs(urlparse(url).query, keep_blank_values=True)
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(query) - set(known))
        if unknown:
            raise CrosscamError(f"{name}: unknown synth:// parameter(s) {unknown}; use {', '.join(known)}")
        parsers = {"int": int, "float": float, "str": str, "Pairs": parse_pairs}
        values = {}
        for key, given in query.items():
            try:
                values[key] = parsers[known[key]](given[-1])
            except ValueError as e:
                raise CrosscamError(f"{name}: bad synth:// parameter {key}={given[-1]!r} ({e})") from e
        return cls(**values).check(name)

    def url(self) -> str:
        """The ``synth://`` URL of this spec (the parameters that differ from the defaults)."""
        default = SceneSpec()
        query = {
            f.name: format_pairs(getattr(self, f.name)) if f.name == "overlap" else getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }
        return "synth://?" + urlencode(query, safe=",")
