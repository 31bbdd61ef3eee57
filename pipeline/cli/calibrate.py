"""``crosscam calibrate``: choose the matcher's link threshold from evidence with ground truth.

``--dataset NAME --data-root DIR``: a labelled data set from the registry (e.g. Market-1501). Its test
tracklets are embedded with the model, and the link decisions of the matcher's rule are scored across
cameras at each threshold (``pipeline.lab.calibrate``, ``LINK_RULE``); prints the same-person and
different-person score distributions and the chosen threshold, writes them as JSON and a plot, and with
``--write`` stores the threshold in the model file (``ModelSpec.link_threshold``), which the matcher then
uses unless the site config sets ``matcher.threshold``.

Without ``--dataset``: a synthetic scene runs once through the camera workers and the embedder (the demo's
scene unless told otherwise); each threshold then replays the published tracklets through the matcher's
rules in memory and is scored with multi-camera IDF1. ``--seeds 2-8`` runs several scenes and averages
their figures per threshold: one scene's best threshold fits that scene.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.common import add_scene_options, add_site_options, demo_embedder
from pipeline.cli.progress import console, step
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "calibrate",
        parents=[common],
        help="choose the matcher's link threshold: on a labelled data set (--dataset), or a synthetic scene",
    )
    p.add_argument(
        "--thresholds",
        help=f"start:stop:step, or a comma-separated list (default: {DATASET_THRESHOLDS} with --dataset, "
        f"else {SCENE_THRESHOLDS})",
    )
    add_scene_options(p)
    p.add_argument("--seeds", help="several scenes, averaged: '2-8' or '2,3,5' (instead of --seed)")
    p.add_argument(
        "--dataset",
        help="a labelled data set of the registry (market1501, mars, folder, ...), or 'site': the site's own stored "
        "sightings, without labels (--site, --redis-url)",
    )
    add_site_options(p)
    p.add_argument("--data-root", type=Path, help="the data set's root folder (with --dataset)")
    p.add_argument(
        "--split", type=int, help="identity split to take the test tracklets of (default: the model's, else 0)"
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="store the chosen threshold in the --embedder model file (with --dataset); with --dataset site, as the "
        "site's own fit, which its matcher then links at",
    )
    p.add_argument("--out", type=Path, default=Path("crosscam-calibrate"), help="folder for calibrate.png and .json")
    p.set_defaults(handler=cmd_calibrate)


SCENE_THRESHOLDS = "0.30:0.90:0.025"
LOW_FIT = 0.1  # a site fit this far below the model's calibrated threshold is warned of
DATASET_THRESHOLDS = "0.20:0.95:0.01"


def thresholds_of(text: str) -> list[float]:
    from pipeline.lab.calibrate import parse_thresholds

    try:
        thresholds = parse_thresholds(text)
    except ValueError as e:
        raise UsageError(f"--thresholds {text!r}: {e} (e.g. 0.3:0.9:0.05 or 0.5,0.6,0.7)") from None
    if not thresholds or not all(-1 <= t <= 1 for t in thresholds):
        raise UsageError(f"--thresholds {text!r}: give cosine thresholds between -1 and 1")
    return thresholds


def cmd_calibrate(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    if args.dataset == "site":
        return calibrate_on_site(args, config)
    if args.site or args.redis_url:
        raise UsageError("--site and --redis-url go with --dataset site (a site's own stored sightings)")
    if args.dataset:
        return calibrate_on_dataset(args, config)
    if args.write or args.data_root:
        raise UsageError("--write and --data-root go with --dataset NAME (a labelled data set)")
    return calibrate_on_scene(args, config)


def calibrate_on_scene(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.embedder import load_embedder
    from pipeline.bus.connect import scratch_redis
    from pipeline.lab.calibrate import at_threshold, collect, plot, sweep
    from pipeline.lab.demo import demo_config, run_site, synthetic_site
    from pipeline.site import Site
    from pipeline.store.sightings import site_evidence
    from synth.truth import truth_rows

    thresholds = thresholds_of(args.thresholds or SCENE_THRESHOLDS)
    seeds = parse_seeds(args.seeds) if args.seeds else [args.seed]
    model = demo_embedder(args, config)
    embedder = load_embedder(model, device="cpu", cache_dir=config.cache_dir)
    policy = config.matcher.policy(embedder.spec.link_threshold)  # what the matcher links at with this model
    scenes, people, tracklets, pooled, replays = [], 0, 0, [], []
    for seed in seeds:
        scene, cameras = synthetic_site(args.people, args.seconds, seed)
        with scratch_redis("crosscam-calibrate-redis-") as client:
            site = Site(demo_config(config, "motion", synthetic=True), client, "calibrate")
            with step(f"running the {len(cameras)}-camera scene (seed {seed}) through workers and embedder (once)"):
                run = run_site(site, cameras, embedder)
            index = {c: i for i, c in enumerate(cameras)}
            items = collect(client, site.keys, run.tracklets, scene, index)
            evidence = site_evidence(client, site.keys)
        truth = {camera: truth_rows(scene, i) for camera, i in index.items()}
        merge_every = site.config.matcher.merge_every
        if not items:
            raise UsageError(f"scene {seed} produced no tracklets to calibrate on; try more --seconds or --people")
        learned = learn_from_site(evidence, run.link_threshold, policy, config)
        pooled.append(learned["pairs"])
        with step(f"replaying {len(items)} tracklets at {len(thresholds)} thresholds, without and with its topology"):
            rows_of = sweep(items, policy, thresholds, merge_every)
            topo_rows = (
                sweep(items, replace(policy, topology=learned["topology"]), thresholds, merge_every)
                if learned["topology"]
                else None
            )
        replays.append((items, merge_every, truth))
        scenes.append(
            {"seed": seed, "tracklets": len(items), "rows": rows_of, "topology_rows": topo_rows or rows_of}
            | {k: v for k, v in learned.items() if k not in ("pairs", "topology")}
        )
        people += len({x.truth for x in items if x.truth is not None})
        tracklets += len(items)
    rows = scenes[0]["rows"] if len(scenes) == 1 else average(scenes)
    topo_rows = (
        scenes[0]["topology_rows"] if len(scenes) == 1 else average([{"rows": sc["topology_rows"]} for sc in scenes])
    )
    best = max(rows, key=lambda r: (r["idf1"], -abs(r["threshold"] - policy.threshold)))
    best_topo = max(topo_rows, key=lambda r: (r["idf1"], -abs(r["threshold"] - policy.threshold)))
    self_calibration = summarise_self_calibration(scenes, pooled, best["threshold"])
    with step("scoring every frame at the best and the configured threshold"):
        per_frame = {
            name: per_frame_mean(replays, at_threshold(policy, th))
            for name, th in (("best", best["threshold"]), ("configured", policy.threshold))
        }
    args.out.mkdir(parents=True, exist_ok=True)
    png, js = args.out / "calibrate.png", args.out / "calibrate.json"
    plot(rows, policy.threshold, png)
    data = {
        "best": best,
        "configured_threshold": policy.threshold,
        "rows": rows,
        "self_calibration": self_calibration,
        "per_frame": per_frame,
        "with_learned_topology": {"best": best_topo, "rows": topo_rows, "mode": config.matcher.topology_mode},
        "scenes": [
            {k: v for k, v in sc.items() if k not in ("rows", "topology_rows")}
            | best_of(sc["rows"])
            | {"with_topology": best_of(sc["topology_rows"])}
            for sc in scenes
        ],
        "tracklets": tracklets,
        "ground_truth_people": people,  # over every scene
        "model": str(model),
        "plot": str(png.resolve()),
    }
    js.write_text(json.dumps(data, indent=2))
    lines = ["threshold   IDF1    IDP    IDR  identities   IDF1 with the learned topology"]
    for r, t in zip(rows, topo_rows, strict=True):
        mark = " <- best" if r is best else ""
        mark += " (configured)" if abs(r["threshold"] - policy.threshold) < 1e-9 else ""
        lines.append(
            f"{r['threshold']:>9.3f} {r['idf1']:.3f}  {r['idp']:.3f}  {r['idr']:.3f}  {r['identities']:>10g}   "
            f"{t['idf1']:.3f}{mark}"
        )
    lines.append(
        "per frame (the tracklets' boxes under these identities, every camera): "
        + "; ".join(
            f"at the {name} threshold IDF1 {f['idf1']:.3f}, HOTA {f['hota']:.3f}" for name, f in per_frame.items()
        )
    )
    sc = self_calibration
    lines.append(
        "self-calibration without labels (crosscam calibrate --dataset site): per scene "
        + ", ".join(f"{x['seed']}: {'-' if x['self_threshold'] is None else x['self_threshold']:}" for x in scenes)
        + (f"; mean {sc['mean']:g}" if sc["mean"] is not None else "")
        + (f"; pooled pairs {sc['pooled']:g}" if sc["pooled"] is not None else "")
        + f" (ground truth's best: {best['threshold']:g})"
    )
    lines.append(
        f"with the topology learned from each scene's links ({config.matcher.topology_mode}): best threshold "
        f"{best_topo['threshold']:g}, IDF1 {best_topo['idf1']:.3f} (without: {best['idf1']:.3f})"
    )
    lines.append(
        f"best: threshold {best['threshold']:g} (IDF1 {best['idf1']:.3f}) over {tracklets} tracklets of "
        f"{people} people"
        + (f" in {len(scenes)} scenes (mean)" if len(scenes) > 1 else "")
        + f"; set it with `--set matcher.threshold={best['threshold']:g}` "
        f"or `matcher: {{threshold: {best['threshold']:g}}}` in the site config. Plot: {png.resolve()}"
    )
    return Result(data, "\n".join(lines))


def learn_from_site(evidence, link_threshold: float, policy, config: CrosscamConfig) -> dict:
    """What a site learns from a scene's stored sightings: the self-labelled pairs, the threshold fitted from
    them (None with too few), and the topology learned from its confident links (None without any), as the
    matcher would use it (``matcher.topology_mode``, ``transit_penalty``)."""
    from pipeline.matcher.rules import Topology
    from pipeline.matcher.site_calibration import TooFewPairs, fit_threshold, site_pairs
    from pipeline.matcher.topology_learn import entries, learn_topology

    pairs = site_pairs(evidence.sightings, evidence.features)
    try:
        fit = fit_threshold(pairs)
    except TooFewPairs:
        fit = None
    # links are confident at the fitted threshold when there is one, else at the one the matcher linked at
    confident_at = fit.threshold if fit is not None else link_threshold
    learned = entries(learn_topology(evidence.sightings, confident_at, policy.margin))
    m = config.matcher
    topology = (
        Topology.parse(learned, m.topology_strict, mode=m.topology_mode, penalty=m.transit_penalty) if learned else None
    )
    return {
        "pairs": pairs,
        "self_threshold": None if fit is None else fit.threshold,
        "self_pairs": {"positives": len(pairs.positives), "negatives": len(pairs.negatives)},
        "learned_topology": learned,
        "topology": topology,
    }


def summarise_self_calibration(scenes: list[dict], pooled: list, ground_truth: float) -> dict:
    """Each scene's self-fitted threshold, their mean, and the fit of every scene's pairs together."""
    import numpy as np

    from pipeline.matcher.site_calibration import SitePairs, TooFewPairs, fit_threshold

    fitted = [sc["self_threshold"] for sc in scenes if sc["self_threshold"] is not None]
    try:
        together = fit_threshold(
            SitePairs(np.concatenate([p.positives for p in pooled]), np.concatenate([p.negatives for p in pooled]))
        ).threshold
    except TooFewPairs:
        together = None
    mean = round(float(np.mean(fitted)), 3) if fitted else None
    return {
        "per_scene": [sc["self_threshold"] for sc in scenes],
        "mean": mean,
        "pooled": together,
        "ground_truth_best": ground_truth,
        "difference": None if mean is None else round(mean - ground_truth, 3),
    }


def calibrate_on_dataset(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    import numpy as np
    from rich.progress import Progress

    from models.artifacts import read_spec, write_spec
    from models.embedder import load_embedder
    from pipeline.lab.calibrate import (
        LINK_RULE,
        distribution,
        embed_for_links,
        link_outcomes,
        pair_f1_threshold,
        pair_scores,
        pick_threshold,
        plot_links,
        sweep_links,
    )
    from trainer.data.registry import DATASETS, load_dataset
    from trainer.evaluate import recipe_split

    if args.dataset not in DATASETS:
        raise UsageError(f"--dataset {args.dataset!r}: choose one of {', '.join(DATASETS)}")
    if args.data_root is None:
        raise UsageError(f"--dataset {args.dataset} needs --data-root DIR (the data set's root folder)")
    if args.seeds:
        raise UsageError("--seeds goes with the synthetic scene, not with --dataset")
    thresholds = thresholds_of(args.thresholds or DATASET_THRESHOLDS)
    model = demo_embedder(args, config, real=True)
    embedder = load_embedder(model, backend=config.embedder.backend, device="cpu", cache_dir=config.cache_dir)
    spec = embedder.spec
    split = args.split if args.split is not None else recipe_split(spec)
    index = load_dataset(args.dataset, args.data_root, split=split)
    tracklets = [t for t in index.gallery if t.pid >= 0]  # every test tracklet (junk ids left out)
    if not tracklets:
        raise UsageError(f"{args.data_root}: the {args.dataset} test split {split} holds no tracklets to calibrate on")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"embedding {len(tracklets)} {args.dataset} test tracklets with {model.name}", total=None)
        features = embed_for_links(embedder, tracklets, progress=lambda d, t: bar.update(task, completed=d, total=t))
    pids = np.array([t.pid for t in tracklets])
    camids = np.array([t.camid for t in tracklets])
    same, different = pair_scores(features, pids, camids)
    if not len(same):
        raise UsageError(f"{args.data_root}: no person of the test split is seen in two cameras; nothing to calibrate")
    margin = config.matcher.margin
    rows = sweep_links(link_outcomes(features, pids, camids), same, different, thresholds, margin)
    chosen = pick_threshold(rows)
    threshold = chosen["threshold"]
    args.out.mkdir(parents=True, exist_ok=True)
    png, js = args.out / "calibrate.png", args.out / "calibrate.json"
    title = f"{model.name} on {args.dataset} (split {split} test identities): link threshold {threshold:g}"
    plot_links(same, different, rows, threshold, png, title)
    calibration = {
        "dataset": args.dataset,
        "split": f"test identities of split {split}",
        "tracklets": len(tracklets),
        "identities": len(set(pids.tolist())),
        "pairs": {"same": len(same), "different": len(different)},
        "rule": LINK_RULE,
        "margin": margin,
        "link_f1": chosen["f1"],
        "date": datetime.now(UTC).date().isoformat(),
    }
    bins = np.linspace(-1.0, 1.0, 41)
    data = {
        "model": str(model),
        "model_id": spec.model_id,
        "threshold": threshold,
        "previous_threshold": spec.link_threshold,
        "at_threshold": chosen,
        "pair_f1_threshold": pair_f1_threshold(same, different, thresholds),
        "calibration": calibration,
        "distributions": {
            "bins": bins.round(3).tolist(),
            "same": distribution(same, bins),
            "different": distribution(different, bins),
        },
        "rows": rows,
        "written": False,
        "plot": str(png.resolve()),
    }
    if args.write:
        current = read_spec(model)
        write_spec(
            model,
            replace(current, link_threshold=threshold, provenance=current.provenance | {"calibration": calibration}),
        )
        data["written"] = True
    js.write_text(json.dumps(data, indent=2))
    lines = [
        f"{len(tracklets)} test tracklets of {calibration['identities']} people; cross-camera pairs: "
        f"{len(same):,} same person, {len(different):,} different people",
        "cosine       p5    p25    p50    p75    p95",
    ]
    for name in ("same", "different"):
        q = data["distributions"][name]["quantiles"]
        lines.append(f"{name:<10} " + " ".join(f"{q[k]:6.3f}" for k in ("p5", "p25", "p50", "p75", "p95")))
    lines.append("threshold   F1   precision recall  wrong links (seen / first)  missed")
    for r in rows:
        if r is chosen or abs(r["threshold"] * 20 - round(r["threshold"] * 20)) < 1e-9:  # every 0.05, and the chosen
            mark = " <- chosen" if r is chosen else ""
            lines.append(
                f"{r['threshold']:>9.3f} {r['f1']:.3f}  {r['precision']:.3f}    {r['recall']:.3f}  "
                f"{r['wrong_links_seen']:>6} / {r['wrong_links_first']:<8g}            {r['missed']:>5}{mark}"
            )
    lines.append(
        f"link threshold {threshold:g} (link F1 {chosen['f1']:.3f}, margin {margin:g}); "
        + (
            f"stored in {model}"
            if args.write
            else f"store it in the model with --write, or set `matcher: {{threshold: {threshold:g}}}`"
        )
        + f". Plot: {png.resolve()}"
    )
    return Result(data, "\n".join(lines))


def parse_seeds(text: str) -> list[int]:
    """``"2-8"`` or ``"2,3,5"`` (or both: ``"1,4-6"``)."""
    from pipeline.cli.common import parse_ranges

    return parse_ranges(text, "--seeds", "scene seeds")


def average(scenes: list[dict]) -> list[dict]:
    """Per threshold, the mean of every scene's IDF1, IDP, IDR and number of identities."""
    out = []
    for i, first in enumerate(scenes[0]["rows"]):
        rows = [sc["rows"][i] for sc in scenes]
        out.append(
            {"threshold": first["threshold"]}
            | {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in ("idf1", "idp", "idr")}
            | {"identities": round(sum(r["identities"] for r in rows) / len(rows), 1)}
            | {"per_scene": [r["idf1"] for r in rows]}
        )
    return out


def per_frame_mean(replays: list[tuple], policy) -> dict:
    """The mean over scenes (``(items, merge_every, truth)`` each) of the per-frame IDF1, IDP, IDR, MOTA and HOTA
    under ``policy`` (``pipeline.lab.calibrate.frame_scores``)."""
    from pipeline.lab.calibrate import frame_scores

    scores = [frame_scores(items, policy, every, truth) for items, every, truth in replays]
    return {
        k: round(sum(getattr(s, k) for s in scores) / len(scores), 4) for k in ("idf1", "idp", "idr", "mota", "hota")
    }


def best_of(rows: list[dict]) -> dict:
    best = max(rows, key=lambda r: r["idf1"])
    return {"best_threshold": best["threshold"], "best_idf1": best["idf1"]}


def calibrate_on_site(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    """The link threshold fitted from the site's own stored sightings, without labels
    (``pipeline.matcher.site_calibration``); with ``--write`` stored as the site's fit of the model."""
    import numpy as np

    from pipeline.bus.site_fit import store_site_fit
    from pipeline.bus.site_models import announced_model
    from pipeline.cli.common import link_threshold_of, open_site
    from pipeline.lab.calibrate import distribution, plot_site_pairs
    from pipeline.matcher.site_calibration import RULE, fit_threshold, site_pairs
    from pipeline.store.sightings import site_evidence

    for flag, value in (("--data-root", args.data_root), ("--seeds", args.seeds), ("--embedder", args.embedder)):
        if value:
            raise UsageError(f"{flag} does not go with --dataset site (the site's stored features are used)")
    site = open_site(args, config)
    evidence = site_evidence(site.client, site.keys)
    name = site.keys.site
    if not evidence.sightings:
        raise UsageError(f"site {name!r}: no stored sightings with features; run its workers and matcher first")
    pairs = site_pairs(evidence.sightings, evidence.features)
    fit = fit_threshold(pairs, what=f"site {name!r} ({len(evidence.sightings)} sightings of model {evidence.model})")
    current, source = link_threshold_of(site, evidence.model)
    announced = (announced_model(site.client, site.keys, evidence.model) or {}).get("link_threshold")
    warning = (
        f"the fit is {announced - fit.threshold:.2f} below the model's own calibrated threshold {announced:g}: "
        "with a model that tells people apart well the rule sets too low a threshold (on Market-1501 it gives "
        "0.28 where the labelled calibration gives 0.57); prefer the model's, or calibrate on labelled footage"
        if announced is not None and fit.threshold < announced - LOW_FIT
        else None
    )
    args.out.mkdir(parents=True, exist_ok=True)
    png, js = args.out / "calibrate.png", args.out / "calibrate.json"
    title = f"site {name}, model {evidence.model}: fitted threshold {fit.threshold:g}"
    plot_site_pairs(pairs.positives, pairs.negatives, fit.threshold, png, title)
    bins = np.linspace(-1.0, 1.0, 41)
    stored = fit.as_dict() | {
        "sightings": len(evidence.sightings),
        "date": datetime.now(UTC).date().isoformat(),
    }
    data = {
        "site": name,
        "model_id": evidence.model,
        "threshold": fit.threshold,
        "margin": fit.margin,
        "fit": stored,
        "linking_at": {"threshold": current, "from": source},
        "warning": warning,
        "distributions": {
            "bins": bins.round(3).tolist(),
            "positives": distribution(pairs.positives, bins),
            "negatives": distribution(pairs.negatives, bins),
        },
        "written": False,
        "plot": str(png.resolve()),
    }
    if args.write:
        store_site_fit(site.client, site.keys, evidence.model, stored)
        data["written"] = True
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.rename(js)
    lines = [
        f"site {name}: {len(evidence.sightings)} sightings of model {evidence.model}; self-labelled pairs: "
        f"{fit.positives} one track (consecutive tracklets), {fit.negatives} two people seen together on one camera",
        "cosine       p5    p25    p50    p75    p95",
    ]
    for label, key in (("one track", "positives"), ("two people", "negatives")):
        q = data["distributions"][key]["quantiles"]
        lines.append(f"{label:<10} " + " ".join(f"{q[k]:6.3f}" for k in ("p5", "p25", "p50", "p75", "p95")))
    lines.append(f"rule: {RULE}")
    if warning:
        lines.append(f"warning: {warning}")
    lines.append(
        f"fitted link threshold {fit.threshold:g}, margin {fit.margin:g} (the matcher links at {current:g}, "
        f"{source}); "
        + (
            f"stored as the site's fit of model {evidence.model}: the matcher takes it up within seconds"
            + (" (matcher.threshold in the config still wins)" if config.matcher.threshold_is_set else "")
            if args.write
            else "store it with --write"
        )
        + f". Plot: {png.resolve()}"
    )
    return Result(data, "\n".join(lines))
