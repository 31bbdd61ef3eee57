"""The one typed configuration schema. Unknown keys are errors that name the key.

Only the CLI reads configuration; library classes take explicit arguments built from it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.ids import CAMERA_ID


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class EmbedderConfig(Section):
    path: str | None = Field(
        None,
        description="checkpoint, ONNX file, OpenVINO IR or TensorRT engine the workers embed with; default: the "
        "bundled real model (Intel's person-reidentification-retail-0277)",
    )
    max_wait: float = Field(0.05, ge=0, description="seconds the embedding service waits for a batch to fill")
    backend: Literal["auto", "torch", "onnxruntime", "openvino", "tensorrt"] = Field(
        "auto",
        description="runtime; auto picks the model file's own (checkpoint: torch, ONNX: onnxruntime, IR: openvino)",
    )
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")
    fp16: bool | None = Field(None, description="half precision; default: on for CUDA, off for the CPU")
    max_batch: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="largest number of tracklets run at once; default 32 on CUDA, 8 on the CPU (where larger batches "
        "run no faster, and the runtime keeps the memory of the largest batch it has run)",
    )
    threads: int | None = Field(None, ge=1, description="CPU threads for onnxruntime and OpenVINO; default: all cores")


class ExportConfig(Section):
    opset: int = Field(18, ge=17, le=23, description="ONNX opset of exported models")
    verify_batches: tuple[int, ...] = Field((1, 3), min_length=1, description="batch sizes checked after export")
    min_cosine: float = Field(0.9999, gt=0, le=1, description="ONNX export fails below this torch/ONNX cosine")
    engine_min_cosine: float = Field(0.99, gt=0, le=1, description="engine build fails below this (fp16) cosine")
    engine_max_batch: int = Field(32, ge=1, le=4096, description="largest batch of the engine's profile")
    engine_max_frames: int = Field(16, ge=1, le=256, description="longest clip of the engine's profile")
    engine_workspace_gib: float = Field(4.0, gt=0, description="TensorRT builder workspace")


class RedisConfig(Section):
    url: str | None = Field(
        None,
        description="redis://host:port/db, or redis+cluster://host:port for a Redis Cluster (any node); "
        "default $CROSSCAM_REDIS_URL, else an embedded server",
    )
    embedded_db: Path | None = Field(None, description="data file of the embedded server (default under the cache dir)")
    prefix: str = Field("crosscam", pattern=r"^[A-Za-z0-9_.-]+$")
    maxlen: int = Field(100_000, ge=100, description="approximate length the tracklet stream is trimmed to")
    backlog: int = Field(
        5000,
        ge=1,
        description="embedded tracklets a camera process keeps in memory while Redis is unreachable (7-20 KB each: "
        "5000 is 35-100 MB); when full the oldest is dropped and counted (stats backlog_dropped)",
    )
    stop_wait: float = Field(
        5.0,
        ge=0,
        description="seconds a camera process asked to stop (SIGTERM, Ctrl-C) keeps trying to publish its waiting "
        "tracklets while Redis is unreachable; what is left then is spooled to disk (redis.spool)",
    )
    spool: Path | None = Field(
        None,
        description="folder where a stopping camera process keeps the tracklets Redis could not take (published by "
        "the site's next camera process on this machine before its cameras start); default: spool/ under the "
        "cache dir",
    )
    replicas: int = Field(
        0,
        ge=0,
        description="replicas that must hold a published record or a matcher batch before it counts as done "
        "(WAIT); >0 keeps acknowledged writes through a failover, and stalls writes while fewer replicas are up",
    )
    replica_timeout: float = Field(
        1.0, gt=0, le=10, description="seconds to wait for those replicas before writing again"
    )


class DetectorConfig(Section):
    weights: str = Field(
        "motion", description="'motion', or YOLO weights Ultralytics loads (.pt, .onnx, OpenVINO, .engine)"
    )
    runtime: Literal["auto", "as-is", "openvino", "onnx", "engine"] = Field(
        "auto",
        description="YOLO runtime: auto (the fastest here), as-is (the weights as given), or openvino / onnx / engine "
        "(TensorRT): .pt weights exported once into the cache",
    )
    conf: float = Field(0.3, gt=0, lt=1)
    iou: float = Field(0.5, gt=0, lt=1)
    imgsz: int = Field(640, ge=32)
    device: str = Field("cpu", description="Ultralytics device: cpu, 0, cuda:0, ...")
    half: bool = False
    every: int = Field(1, ge=1, description="detect on every k-th frame")
    gate: float = Field(
        0.002,
        ge=0,
        le=1,
        description="motion gate: the detector runs on a frame only when at least this fraction of the picture "
        "changed (0: on every frame); YOLO only",
    )
    gate_refresh: float = Field(
        0.5, ge=0, description="motion gate: while tracks are open, detect at least this often (seconds)"
    )
    gate_idle: float = Field(
        2.0,
        gt=0,
        description="motion gate: while no track is open, detect at least this often (seconds), so a person who "
        "sits still from the start is found",
    )
    batch: int = Field(
        8, ge=1, le=256, description="most frames the process's shared YOLO detector runs at once, across its cameras"
    )
    tracker: Literal["bytetrack.yaml", "botsort.yaml"] = "bytetrack.yaml"
    min_area: int = Field(400, ge=1, description="motion detector: smallest moving blob, pixels")
    min_aspect: float = Field(1.1, gt=0, description="motion detector: least height / width of a person's blob")
    max_aspect: float = Field(5.0, gt=0, description="motion detector: largest height / width of a person's blob")


class TrackletConfig(Section):
    max_length: int = Field(48, ge=1, description="crops after which a tracklet closes")
    max_seconds: float = Field(8.0, gt=0, description="span after which a long track's tracklet closes")
    lost_after: float = Field(1.0, gt=0, description="seconds unseen after which a track has ended")
    min_crops: int = Field(2, ge=1)
    min_box_height: int = Field(
        40, ge=1, description="boxes shorter than this (pixels) are too small to describe a person"
    )
    edge_margin: int = Field(2, ge=0, description="a box this close to the frame edge (pixels) is cut by it: left out")
    blur_ratio: float = Field(
        0.33,
        ge=0,
        le=1,
        description="a crop whose sharpness (variance of the Laplacian at the embedder's input size) is below "
        "this fraction of its tracklet's median is blurred and left out; the sharpest min_crops are always "
        "kept; 0: off",
    )


class SourceConfig(Section):
    transport: Literal["tcp", "udp"] = "tcp"
    decode: Literal["cpu", "hardware"] = Field(
        "cpu",
        description="hardware: ask FFmpeg for a hardware video decoder (VA-API, D3D11, as OpenCV's build offers), "
        "the CPU where there is none",
    )
    buffer: int = Field(8, ge=1, description="frames buffered per camera")
    fps: float | None = Field(
        None,
        gt=0,
        description="process at most this many frames a second of each camera (the others are decoded and skipped); "
        "default: every frame",
    )
    reconnect_initial: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)
    reconnect_attempts: int | None = Field(None, ge=1, description="give up after this many; default never")


class TransitConfig(Section):
    from_: str = Field(alias="from", pattern=CAMERA_ID, description="camera id a person leaves")
    to: str = Field(pattern=CAMERA_ID, description="camera id they reach next")
    min: float = Field(0.0, description="fewest seconds between leaving one view and entering the other")
    max: float = Field(description="most seconds between the two")
    overlap: bool = Field(
        False,
        description="the two views overlap: one person may be in both at once (a pair listed without it cannot be)",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MatcherConfig(Section):
    threshold: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="least cosine score to join an identity; default: the model's own calibrated link_threshold "
        "(`crosscam calibrate --dataset ... --write`), else 0.6. Setting it here overrides the model's",
    )
    margin: float = Field(0.03, ge=0, le=2, description="how far the best must beat the runner-up")
    exemplars: int = Field(8, ge=1, le=256, description="features kept per identity")
    duplicate: float = Field(0.97, gt=0, le=1, description="a feature this close to an exemplar is not kept")
    continuity_gap: float = Field(10.0, ge=0, description="seconds within which a track keeps its identity")
    merge_threshold: float = Field(0.85, ge=-1, le=1, description="merge pass: least exemplar agreement")
    merge_every: float = Field(10.0, gt=0, description="seconds of stream time between merge passes")
    reorder_window: float = Field(
        10.0,
        ge=0,
        description="tracklets are linked in stream order, each waiting until every camera's watermark has passed "
        "it, but at most this many seconds; a camera whose watermark has not moved for this long is not waited "
        "for; 0: link in arrival order (identities may then depend on timing). At most half of claim_idle",
    )
    batch: int = Field(
        128,
        ge=1,
        le=1000,
        description="records read and written at once (at most 1000: a batch's write is one script argument, "
        "which Redis limits to 512 MB, and records are up to 448 KiB)",
    )
    claim_idle: float = Field(30.0, gt=0, description="seconds before another consumer's pending records are claimed")
    lease: float = Field(10.0, gt=0, description="seconds a dead matcher's lease blocks a standby")
    ttl: float | None = Field(
        None, gt=0, description="retention: sightings and identities expire this long after their last write (s)"
    )
    tentative_seconds: float = Field(
        2.0,
        ge=0,
        description="an identity seen on one camera only, for less than this many seconds in all, is tentative: "
        "possibly no one (a false detection the tracker kept); persons, the API and export-tracks leave it out "
        "unless asked for (--all); 0: none is",
    )
    topology: tuple[TransitConfig, ...] = Field((), description="transit windows between cameras (both directions)")
    topology_strict: bool = Field(False, description="camera pairs not in the topology cannot be walked between")
    topology_mode: Literal["hard", "soft"] = Field(
        "hard",
        description="hard: a move outside its transit window cannot be one person; soft: it can, if its score "
        "makes up transit_penalty",
    )
    transit_penalty: float = Field(
        0.1,
        ge=0,
        le=2,
        description="soft topology: added to the threshold for a move outside its transit window",
    )
    ground_near: float = Field(
        1.0,
        gt=0,
        description="ground plane (cameras[].ground): a tracklet within this many metres on the plan (median over "
        "the shared moments) of exactly one identity seen on another camera at once joins it. Chosen as a person's "
        "width plus a foot point's error: one person's two views lay a median 0.69 m apart on the synthetic site "
        "scenes; two people side by side (0.5-0.8 m) are both this close, and then the scores decide",
    )
    ground_far: float = Field(
        3.0,
        gt=0,
        description="ground plane: sightings farther apart than this many metres at the same moments (median) are "
        "two people. Chosen well above a foot point's error where the box reaches the feet (the synthetic site "
        "scenes: 90% of one person's two views within 1.9 m)",
    )

    @model_validator(mode="after")
    def _ground_distances(self) -> MatcherConfig:
        if self.ground_near >= self.ground_far:
            raise ValueError(
                f"ground_near ({self.ground_near:g} m) must be below ground_far ({self.ground_far:g} m): within "
                "ground_near sightings are one person, beyond ground_far two"
            )
        return self

    def policy(self, model_threshold: float | None = None):
        """The matcher's rules. The link threshold is ``threshold`` when set, else ``model_threshold`` (the
        model's calibrated one, which also lifts ``merge_threshold`` to at least it), else the default."""
        from pipeline.matcher.rules import MatchPolicy, Topology, with_model_threshold

        topology = None
        if self.topology:
            topology = Topology.parse(
                [
                    {"from": t.from_, "to": t.to, "min": t.min, "max": t.max, "overlap": t.overlap}
                    for t in self.topology
                ],
                self.topology_strict,
                mode=self.topology_mode,
                penalty=self.transit_penalty,
            )
        policy = MatchPolicy(
            margin=self.margin,
            exemplars=self.exemplars,
            duplicate=self.duplicate,
            continuity_gap=self.continuity_gap,
            merge_threshold=self.merge_threshold,
            topology=topology,
        )
        if self.threshold is not None:
            return replace(policy, threshold=self.threshold)
        return with_model_threshold(policy, model_threshold)

    @property
    def threshold_is_set(self) -> bool:
        """Whether the site sets the link threshold (else the model's own applies)."""
        return self.threshold is not None


API_KEY = r"^[!-~]{1,256}$"


class ApiConfig(Section):
    host: str = Field("127.0.0.1", description="address the HTTP API binds; 0.0.0.0 exposes it to the network")
    port: int = Field(8080, ge=0, le=65535)
    key: str | None = Field(
        None,
        pattern=API_KEY,
        description="API key (printable ASCII, no spaces); default $CROSSCAM_API_KEY, else a random one printed at start",
    )
    max_images: int = Field(16, ge=1, le=1000, description="search: most images in one request (413 above)")
    max_image_bytes: int = Field(8_000_000, ge=1000, description="search: largest encoded image, bytes (413 above)")
    max_request_bytes: int = Field(
        32_000_000, ge=1000, description="search: largest request body, bytes (413 above, before it is read)"
    )
    max_pixels: int = Field(
        16_000_000,
        ge=1,
        le=1_000_000_000,
        description="search: most pixels (width x height, read from the image header before decoding) of one "
        "image (413 above)",
    )
    search_concurrency: int = Field(
        2, ge=1, le=64, description="search: requests decoded and embedded at once; the others wait their turn"
    )
    uploads_per_client: int = Field(
        4,
        ge=1,
        le=1000,
        description="search: requests one client address may have under way at once, upload included (429 with "
        "Retry-After above, before the body is read)",
    )


class CameraConfig(Section):
    id: str = Field(
        pattern=CAMERA_ID, description="camera id, unique within the site: 1 to 128 letters, digits, '_', '.' or '-'"
    )
    source: str = Field(
        description="rtsp://..., http(s)://..., a video file, a webcam index, replay://VIDEO (a file played as a "
        "live camera), synth://..., or env:VARIABLE (the URL in that environment variable)"
    )
    detector: str | None = Field(None, description="overrides detector.weights for this camera")
    ground: tuple[tuple[float, float, float, float], ...] | None = Field(
        None,
        description="the floor as this camera sees it: 4 or more [u, v, X, Y] pairs, a floor mark's pixel (u, v) in "
        "the camera's frame and its place (X, Y) in metres on the site's floor plan (docs/pipeline.md, \"Ground "
        'plane"); the matcher then links and separates people by where they stand (matcher.ground_near, '
        "ground_far)",
    )

    @model_validator(mode="after")
    def _ground_points(self) -> CameraConfig:
        if self.ground is not None:
            from pipeline.matcher.ground import homography

            homography(self.id, self.ground)  # a ConfigError naming the camera when the points are unusable
        return self


class CrosscamConfig(Section):
    cache_dir: Path | None = Field(
        None, description="exported models and engines; default $CROSSCAM_CACHE_DIR or ~/.cache/crosscam"
    )
    site: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$", description="site name: one matcher, one stream")
    cameras: tuple[CameraConfig, ...] = Field((), description="the site's cameras (crosscam run)")
    redis: RedisConfig = RedisConfig()
    source: SourceConfig = SourceConfig()
    detector: DetectorConfig = DetectorConfig()
    tracklets: TrackletConfig = TrackletConfig()
    embedder: EmbedderConfig = EmbedderConfig()
    export: ExportConfig = ExportConfig()
    matcher: MatcherConfig = MatcherConfig()
    api: ApiConfig = ApiConfig()

    @model_validator(mode="after")
    def _check_cameras(self) -> CrosscamConfig:
        return _gate_sees_standing_people(_unique_camera_ids(self))


def _gate_sees_standing_people(config: CrosscamConfig) -> CrosscamConfig:
    d, t = config.detector, config.tracklets
    if d.gate > 0 and d.gate_refresh >= t.lost_after:
        raise ValueError(
            f"detector.gate_refresh ({d.gate_refresh:g} s) must be below tracklets.lost_after ({t.lost_after:g} s): "
            "a person standing still is detected only every gate_refresh seconds, and a track unseen for "
            "lost_after ends, so their track would be cut into pieces; lower gate_refresh or set detector.gate: 0"
        )
    return config


def _unique_camera_ids(config: CrosscamConfig) -> CrosscamConfig:
    ids = [c.id for c in config.cameras]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"camera ids must be unique within a site; repeated: {duplicates}")
    return config
