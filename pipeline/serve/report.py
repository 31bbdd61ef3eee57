"""A self-contained HTML report: every person's cross-camera timeline with thumbnails (no server needed)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pipeline import store
from pipeline.bus.connect import Client
from pipeline.keys import Keys

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table.metrics td{padding:2px 12px}
.person{border-top:1px solid #ddd;padding:8px 0}
.lane{position:relative;height:58px;background:#f6f6f6;margin:2px 0 2px 90px}
.lane .cam{position:absolute;left:-90px;top:20px;width:84px;font-size:12px;text-align:right}
.seg{position:absolute;top:2px;height:54px;background:#9cc3e6;border-radius:3px;overflow:hidden}
.seg img{height:54px}
"""


def write_report(path: Path, client: Client, keys: Keys, title: str, metrics: dict, cameras: list[str]) -> Path:
    """Write the report of every stored person to ``path`` (folders made as needed) and return ``path``:
    ``metrics`` as a table, then each person's sightings on a lane per camera of ``cameras``, placed on one
    time axis, each with its thumbnail inline. Every text from the store or the caller is HTML-escaped."""
    persons = store.persons(client, keys, limit=100_000)
    histories = [store.history(client, keys, p.person) for p in sorted(persons, key=lambda p: p.first_seen)]
    times = [t for h in histories for s in h.sightings for t in (s.t_start, s.t_end)]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = max(t1 - t0, 1e-6)
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{_STYLE}</style>"]
    parts.append(f"<h1>{html.escape(title)}</h1><table class=metrics>")
    parts += [f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in metrics.items()]
    parts.append(f"</table><p>{len(histories)} persons; time axis {t0:.1f} s to {t1:.1f} s.</p>")
    for h in histories:
        parts.append(
            f"<div class=person id=person-{h.person}><b>person {h.person}</b> — "
            f"{len(h.sightings)} sightings on {html.escape(', '.join(h.cameras))}"
        )
        for cam in cameras:
            segs = [s for s in h.sightings if s.camera == cam]
            if not segs:
                continue
            parts.append(f"<div class=lane><span class=cam>{html.escape(cam)}</span>")
            for s in segs:
                left = 100 * (s.t_start - t0) / span
                width = max(100 * (s.t_end - s.t_start) / span, 2.5)
                thumb = base64.b64encode(store.thumbnail(client, keys, s.sighting)).decode()
                tip = f"{s.sighting} {s.t_start:.1f}-{s.t_end:.1f} s {s.decision}"
                parts.append(
                    f"<div class=seg style='left:{left:.2f}%;width:{width:.2f}%' title='{html.escape(tip)}'>"
                    f"<img src='data:image/jpeg;base64,{thumb}' alt='{html.escape(s.sighting)}'></div>"
                )
            parts.append("</div>")
        parts.append("</div>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path


def _fmt(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)
