"""``crosscam matcher`` and the queries: ``persons``, ``history``, ``search``, ``explain``, ``unlink``, ``prune``,
``migrate-keys``."""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.common import dump, dump_all, history_text, open_site, when
from pipeline.cli.stopping import stop_signals
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    site = argparse.ArgumentParser(add_help=False)
    site.add_argument("--redis-url", help="default: $CROSSCAM_REDIS_URL, else redis.url, else an embedded server")
    site.add_argument("--site", help="site name (default: site)")

    p = verbs.add_parser("matcher", parents=[common, site], help="link tracklets from every camera into persons")
    p.add_argument(
        "--consumer",
        help="consumer name in the group (default: host-pid-random, unique per process); a matcher restarted "
        "under the same name reads its own pending records at once",
    )
    p.add_argument("--idle-exit", type=float, help="stop after this many seconds with nothing to do")
    p.set_defaults(handler=cmd_matcher)

    p = verbs.add_parser("persons", parents=[common, site], help="list persons, most recently seen first")
    p.add_argument("--camera", help="only persons seen on this camera")
    p.add_argument("--since", help="seen since: seconds (stream time) or an ISO date-time")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument(
        "--all", action="store_true", help="also tentative persons (one camera, a moment: possibly false detections)"
    )
    p.set_defaults(handler=cmd_persons)

    p = verbs.add_parser("history", parents=[common, site], help="a person's cross-camera history")
    p.add_argument("person", type=int)
    p.set_defaults(handler=cmd_history)

    p = verbs.add_parser("search", parents=[common, site], help="find persons who look like these images")
    p.add_argument("images", nargs="+", type=Path, help="crops of one person (embedded together as one tracklet)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--embedder", help="re-ID model (default: embedder.path); must be the one the workers use")
    p.set_defaults(handler=cmd_search)

    p = verbs.add_parser("explain", parents=[common, site], help="why a sighting belongs to its person")
    p.add_argument("sighting", help="sighting id: camera:track:seq")
    p.set_defaults(handler=cmd_explain)

    p = verbs.add_parser("unlink", parents=[common, site], help="take a wrongly linked sighting out of its person")
    p.add_argument("sighting", help="sighting id: camera:track:seq")
    p.set_defaults(handler=cmd_unlink)

    p = verbs.add_parser("prune", parents=[common, site], help="delete sightings older than a retention period")
    p.add_argument("--older-than", required=True, help="age such as 3600, 90m, 12h, 7d")
    p.set_defaults(handler=cmd_prune)

    p = verbs.add_parser(
        "migrate-keys",
        parents=[common, site],
        help="rename a site's keys from the layout before hash tags (P:S:...) to P:{S}:... (workers and matcher stopped)",
    )
    p.set_defaults(handler=cmd_migrate_keys)


def parse_age(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m:
        raise UsageError(f"--older-than {text!r}: give a number of seconds or e.g. 90m, 12h, 7d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def parse_since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"--since {text!r}: give seconds or an ISO date-time such as 2026-11-22T08:00") from None


def cmd_matcher(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    """Run the site's matcher (standing by while another holds the lease) until ``--idle-exit`` or a signal:
    SIGINT or SIGTERM writes what it linked, releases the lease (a standby takes over at once) and exits 0."""
    with stop_signals() as stop:
        site = open_site(args, config)
        matcher = site.matcher(args.consumer).start(stop=stop.is_set)
        counts = matcher.run(stop=stop.is_set, idle_exit=args.idle_exit)
    text = ", ".join(f"{k} {v}" for k, v in counts.items()) + (f"; stopped by {stop.by}" if stop.by else "")
    return Result(
        {"site": site.name, "consumer": matcher.consumer, **counts, "stopped_by": stop.by},
        f"matcher {matcher.consumer}: {text}",
    )


def cmd_persons(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline import store

    site = open_site(args, config)
    client, keys = site.client, site.keys
    rows = store.persons(
        client, keys, args.camera, parse_since(args.since), args.limit, config.matcher.tentative_seconds, args.all
    )
    lines = [f"{len(rows)} persons" + ("" if args.all else " (tentative ones left out: --all shows them)")] + [
        f"  {r.person:>6}  {r.sightings:>4} sightings  {when(r.first_seen)} - {when(r.last_seen)}  "
        f"{', '.join(r.cameras)}{'  (tentative)' if r.tentative else ''}"
        for r in rows
    ]
    return Result({"site": keys.site, "persons": dump_all(rows)}, "\n".join(lines))


def cmd_history(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline import store

    site = open_site(args, config)
    client, keys = site.client, site.keys
    h = store.history(client, keys, args.person)
    return Result(dump(h), history_text(h))


def cmd_explain(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline import store

    site = open_site(args, config)
    client, keys = site.client, site.keys
    e = store.explain(client, keys, args.sighting)
    lines = [
        f"{e.sighting} ({e.camera}, {when(e.t_start)}-{when(e.t_end)}) belongs to person {e.person}",
        f"  decision: {e.decision} -> {e.identity}: {e.reason}",
        f"  best {e.best} score {e.score}, runner-up {e.runner_up} score {e.runner_up_score}, "
        f"{e.excluded} candidates excluded by space-time constraints",
    ] + [f"  merged: {m.from_} -> {m.into} (score {m.score})" for m in e.merges]
    return Result(dump(e), "\n".join(lines))


def cmd_unlink(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline import store

    site = open_site(args, config)
    client, keys = site.client, site.keys
    r = store.unlink(client, keys, args.sighting, site.policy())
    return Result(dump(r), f"{r.sighting} moved from person {r.from_} to new person {r.person}")


def cmd_prune(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline import store

    site = open_site(args, config)
    client, keys = site.client, site.keys
    r = store.prune(client, keys, parse_age(args.older_than), site.policy())
    streams = ", ".join(f"{n} {name}" for name, n in r.trimmed.items())
    return Result(
        dump(r), f"removed {r.sightings_removed} sightings and {r.persons_removed} persons; trimmed {streams}"
    )


def cmd_migrate_keys(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline.store.migrate import MigrateError, migrate_keys

    site = open_site(args, config)
    try:
        r = migrate_keys(site.client, site.keys)
    except MigrateError as e:
        raise UsageError(f"migrate-keys: {e}") from None
    lines = [f"site {r.site}: {r.renamed} keys renamed to {site.keys.pattern[:-1]}..."]
    if r.conflicts:
        lines.append(
            f"{len(r.conflicts)} old keys left alone, their new names exist already (merge or delete them): "
            + ", ".join(r.conflicts[:10])
        )
    return Result({"site": r.site, "renamed": r.renamed, "conflicts": r.conflicts}, "\n".join(lines))


def read_images(paths: list[Path]):
    """RGB arrays of image files; a missing or unreadable file is a usage error naming it."""
    from pipeline.embedding import decode_image

    images = []
    for p in paths:
        if not p.is_file():
            raise UsageError(f"{p}: no such image file")
        image = decode_image(p.read_bytes())
        if image is None:
            raise UsageError(f"{p}: not an image OpenCV can read (JPEG, PNG, ...)")
        images.append(image)
    return images


def cmd_search(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.embedder import load_embedder
    from pipeline import store
    from pipeline.embedding import embed_images

    path = args.embedder or config.embedder.path
    if not path:
        raise UsageError("no re-ID model: pass --embedder PATH (the model the workers embed with)")
    images = read_images(args.images)
    site = open_site(args, config)
    client, keys = site.client, site.keys
    feature = embed_images(load_embedder(path, device="cpu", cache_dir=config.cache_dir), images)
    gallery = store.load_gallery(client, keys)
    if gallery.dim is not None and feature.shape[-1] != gallery.dim:
        raise UsageError(
            f"{path}: the model gives {feature.shape[-1]}-d features; site {keys.site!r}'s persons hold "
            f"{gallery.dim}-d features: search with the model the site's workers embed with"
        )
    results = store.search_histories(client, keys, gallery, feature, args.top_k)
    lines = [f"{len(results)} matches for {len(images)} image(s)"]
    for r in results:
        lines.append(f"score {r.score:.3f}  " + history_text(r.history))
    return Result({"site": keys.site, "results": dump_all(results)}, "\n".join(lines))
