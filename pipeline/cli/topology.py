"""``crosscam topology learn``: each camera pair's transit window and whether the two views overlap, estimated
from the confident links already in the site's store (``pipeline.matcher.topology_learn``); printed, and with
``--write FILE`` written as the site config's ``matcher.topology`` entries (YAML) to paste or merge in."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.common import add_site_options
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("topology", help="the site's camera topology learned from its own links")
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    learn = actions.add_parser(
        "learn",
        parents=[common],
        help="transit windows and overlapping views from the confident links in the site's store",
    )
    add_site_options(learn)
    learn.add_argument("--write", type=Path, metavar="FILE", help="write the matcher.topology entries as YAML")
    learn.add_argument(
        "--min-moves",
        type=int,
        default=None,
        help="confident moves a camera pair needs to be listed (default: pipeline.matcher.topology_learn.MIN_MOVES)",
    )
    learn.set_defaults(handler=cmd_learn)


def cmd_learn(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from collections import Counter

    from pipeline.cli.common import link_threshold_of, open_site
    from pipeline.matcher.topology_learn import MIN_MOVES, entries, learn_topology
    from pipeline.store.sightings import read_sightings

    min_moves = MIN_MOVES if args.min_moves is None else args.min_moves
    if min_moves < 1:
        raise UsageError(f"--min-moves {min_moves}: give 1 or more")
    site = open_site(args, config)
    name = site.keys.site
    sightings = [s for s, _ in read_sightings(site.client, site.keys, features=False)]
    if not sightings:
        raise UsageError(f"site {name!r}: no stored sightings; run its workers and matcher first")
    model = Counter(s.model for s in sightings).most_common(1)[0][0]
    threshold, source = link_threshold_of(site, model)
    margin = config.matcher.margin
    estimates = learn_topology(sightings, threshold, margin, min_moves)
    learned = entries(estimates)
    if not learned:
        raise UsageError(
            f"site {name!r}: no camera pair has {min_moves} or more confident moves in {len(sightings)} stored "
            f"sightings (a move: one identity on two cameras in turn, both sightings founding it or linked at "
            f"{threshold:g} + margin {margin:g} or more); let the site run longer, or lower --min-moves"
        )
    data = {
        "site": name,
        "sightings": len(sightings),
        "confident_score": round(threshold + margin, 4),
        "threshold_from": source,
        "pairs": [e.as_dict() for e in estimates],
        "topology": learned,
        "written": None,
    }
    if args.write:
        data["written"] = str(write_topology(args.write, learned))
    lines = [
        f"site {name}: {len(sightings)} sightings; confident links score {threshold + margin:g} or more "
        f"(threshold {threshold:g} from {source}, margin {margin:g})",
        "cameras              moves  at once  window (s)      overlap",
    ]
    for e in estimates:
        window = "-" if e.window is None else f"{e.window[0]:.1f} - {e.window[1]:.1f}"
        pair = f"{e.cameras[0]} - {e.cameras[1]}"
        lines.append(f"{pair:<20} {e.moves:>5}  {e.overlapping:>7}  {window:<15} {'yes' if e.overlap else 'no'}")
    lines.append(
        f"written to {data['written']}: paste its matcher.topology into the site config"
        if args.write
        else "write it as the site config's matcher.topology with --write FILE"
    )
    return Result(data, "\n".join(lines))


def write_topology(path: Path, learned: list[dict]) -> Path:
    """``matcher: {topology: [...]}`` as YAML at ``path``, written whole or not at all."""
    import yaml

    if path.is_dir():
        raise UsageError(f"--write {path}: is a folder; give a file name (e.g. topology.yaml)")
    if not path.parent.is_dir():
        raise UsageError(f"--write {path}: no folder {path.parent}; create it first")
    text = "# learned by `crosscam topology learn`: transit windows in seconds, both directions\n"
    text += yaml.safe_dump({"matcher": {"topology": learned}}, sort_keys=False, default_flow_style=None)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
