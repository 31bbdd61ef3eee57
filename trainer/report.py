"""Results tables in the layout of the AAAI-2020 paper's Table 1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAPER_TABLE1 = {  # MARS, no re-ranking unless noted: mAP, CMC-1, CMC-5, CMC-20 (from the paper)
    "mars_bbot_osm_clcenters_attention": {"mAP": 82.9, "1": 88.6, "5": 96.2, "20": 98.0, "rerank_mAP": 87.8},
}


def table1_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """``rows``: ``{"name", "mAP", "cmc": {"1","5","20"}, "rerank": {...} | None}`` with fractions in [0, 1].

    Percentages with one decimal, as in the paper; re-ranked mAP / CMC-1 when evaluated; the paper's
    figure beside ours where the recipe is one of its rows.
    """
    lines = [
        "| Method | mAP | CMC-1 | CMC-5 | CMC-20 | mAP (re-rank) | CMC-1 (re-rank) | paper mAP / CMC-1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rr = r.get("rerank") or {}
        paper = PAPER_TABLE1.get(r["name"])
        cells = [
            r["name"],
            f"{100 * r['mAP']:.1f}",
            *(f"{100 * r['cmc'][k]:.1f}" for k in ("1", "5", "20")),
            f"{100 * rr['mAP']:.1f}" if rr else "-",
            f"{100 * rr['cmc']['1']:.1f}" if rr else "-",
            f"{paper['mAP']} / {paper['1']}" if paper else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
