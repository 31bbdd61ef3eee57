"""The floor plan of the ``site`` layout's overlapping views (``synth.layout``).

The cameras of a group of overlapping views watch one straight walkway, WALKWAY x DEPTH metres. A walker on
it has one floor position at each moment: X, the distance along the walkway, and Y, the depth across it (0 on
the first camera's far side). Each camera of the group sees the walkway from its own side (``view``): its
image of a person's feet (the bottom centre of ``synth.visits.floor_box``) is an affine function of (X, Y), so
four floor corners and their pixels (``ground_points``) describe the camera's homography exactly. On the
plan, group ``g``'s walkway starts at X = g * GROUP_SPACING, so no two groups share a place.
"""

from __future__ import annotations

from synth.visits import floor_box

WALKWAY = 8.0  # metres along the walkway: a crossing of 4-7 s is a walk at 1.1-2 m/s
DEPTH = 4.0  # metres across it
GROUP_SPACING = 20.0  # metres between the starts of two groups' walkways on the plan


def view(position: int) -> tuple[bool, bool]:
    """How the ``position``-th camera of a group (0, 1, ...) sees the walkway: (mirrored along it, mirrored
    across it). The first camera looks from one side; the second from the other (left and right, far and near
    swap); the third from the first's side, the far end swapped with the near; the fourth the remaining way."""
    return ((False, False), (True, True), (False, True), (True, False))[position % 4]


def seen_as(position: int, depth: float, backward: bool) -> tuple[float, bool]:
    """The (depth, leftward) in the ``position``-th camera's view of a walker at floor ``depth`` (0 .. 1 of
    DEPTH) walking towards X = 0 (``backward``) or away from it."""
    along, across = view(position)
    return (1.0 - depth if across else depth), backward != along


def floor_point(position: int, x: float, y: float, width: int, height: int) -> tuple[float, float]:
    """The pixel (u, v) where the ``position``-th camera of a group sees feet at floor (``x``, ``y``) metres of
    its walkway (``0 <= x <= WALKWAY``, ``0 <= y <= DEPTH``)."""
    depth, leftward = seen_as(position, y / DEPTH, False)
    x1, _, x2, y2 = floor_box(depth, x / WALKWAY, leftward, width, height)
    return (x1 + x2) / 2, y2


def ground_points(group: int, position: int, width: int, height: int) -> list[tuple[float, float, float, float]]:
    """Four (u, v, X, Y) pairs, pixels to plan metres: four marks on group ``group``'s walkway, a quarter of its
    length in from either end on both of its sides (all in the frame), as its ``position``-th camera sees them."""
    points = []
    for x, y in ((WALKWAY / 4, 0.0), (3 * WALKWAY / 4, 0.0), (3 * WALKWAY / 4, DEPTH), (WALKWAY / 4, DEPTH)):
        u, v = floor_point(position, x, y, width, height)
        points.append((u, v, group * GROUP_SPACING + x, y))
    return points
