"""A training recipe: one typed, validated value (YAML on disk; unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crosscam.errors import ConfigError
from crosscam.yaml_config import read_yaml, validated

RECIPES = Path(__file__).with_name("recipes")  # the bundled recipes, by name


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataRecipe(_Section):
    dataset: Literal["mars", "prid2011", "ilidsvid", "market1501", "folder"] = "mars"
    split: int = Field(0, ge=0, description="train/test split (PRID-2011, iLIDS-VID)")
    splits: str | None = Field(None, description="PRID-2011 splits file; default DATA_ROOT/splits_prid2011.json")
    val_identities: float = Field(
        0.1, ge=0, lt=1, description="share of training identities held out for model selection"
    )
    clip_sampling: Literal["consecutive", "even"] = "consecutive"
    workers: int = Field(0, ge=0, description="DataLoader worker processes (0: read in the training process)")


class ModelRecipe(_Section):
    arch: str = "resnet50_attention"
    pretrained: str | None = Field("imagenet", description="imagenet, a local .pth file, or null for random init")
    init_checkpoint: str | None = Field(None, description="start from this crosscam checkpoint (e.g. MARS -> PRID)")
    height: int | None = Field(None, ge=16)
    width: int | None = Field(None, ge=8)
    frames: int = Field(4, ge=1, description="T: frames per training clip")
    last_stride: int | None = Field(
        None, ge=1, le=2, description="stride of the backbone's last stage (default: the architecture's)"
    )
    head_options: dict[str, Any] = Field(
        default_factory=dict,
        description="options of the temporal head, e.g. {hidden: 128, attention: false} for gru_rank (models/heads.py)",
    )
    neck: Literal["bnneck", "none"] | None = Field(
        None,
        description="bnneck: batch-norm neck (Luo et al. 2019); none: retrieve with the head's feature; "
        "unset: bnneck, or the init_checkpoint's neck",
    )


class SamplerRecipe(_Section):
    p: int = Field(8, ge=2, description="identities per batch")
    k: int = Field(4, ge=1, description="tracklets per identity")


class AugmentRecipe(_Section):
    flip: float = Field(0.5, ge=0, le=1)
    pad: int = Field(10, ge=0)
    erase: float = Field(0.5, ge=0, le=1, description="probability that a frame is randomly erased")
    color: float = Field(
        0.0, ge=0, le=1, description="probability that a clip's colours are jittered (per-channel gain, brightness)"
    )
    color_gain: float = Field(0.2, ge=0, lt=1, description="colour jitter: per-channel gain in [1-g, 1+g]")
    color_shift: float = Field(25.0, ge=0, le=255, description="colour jitter: brightness offset in [-s, s]")
    erase_fill: Literal["random", "mean"] = Field(
        "random",
        description="random: random pixels (Zhong et al.); mean: the constant the AAAI-2020 code writes (the "
        "ImageNet mean, in the normalised image)",
    )


class OptimRecipe(_Section):
    lr: float = Field(3.5e-4, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: int = Field(10, ge=0, description="linear warm-up from warmup_factor x lr")
    warmup_factor: float = Field(0.1, gt=0, le=1, description="the warm-up's first lr, as a fraction of lr")
    schedule: Literal["step", "exponential"] = Field(
        "step",
        description="step: x gamma at each milestone; exponential: constant until decay_start, then down to "
        "decay_factor x lr at the last epoch (Hermans et al. 2017)",
    )
    milestones: tuple[int, ...] = Field((40, 70), description="epochs at which the lr is multiplied by gamma")
    gamma: float = Field(0.328, gt=0, le=1)
    decay_start: float = Field(0, ge=0, description="exponential schedule: the epoch at which the decay starts")
    decay_factor: float = Field(0.001, gt=0, le=1, description="exponential schedule: the lr at the end, over lr")
    epochs: int = Field(120, ge=1)
    iters_per_epoch: int | None = Field(None, ge=1, description="default: one pass over the identities")
    center_lr: float = Field(0.5, gt=0, description="SGD lr of the center-loss centers")


class LossRecipe(_Section):
    """Weights of the loss terms (0 disables a term) and their parameters."""

    xent: float = Field(1.0, ge=0)
    label_smooth: float = Field(0.1, ge=0, lt=1)
    triplet: float = Field(1.0, ge=0)
    triplet_margin: float = Field(0.3, ge=0)
    triplet_metric: Literal["euclidean", "cosine"] = "euclidean"
    center: float = Field(5e-4, ge=0)
    metric_feature: Literal["pre_bn", "post_bn"] = Field(
        "pre_bn",
        description="the feature triplet, centre and OSM losses act on: before the BNNeck (Luo et al. 2019) or "
        "after it (the AAAI-2020 code)",
    )
    osm: float = Field(0.0, ge=0, description="OSM + CAA weight (the seed's beta)")
    osm_sigma: float = Field(0.8, gt=0)
    osm_alpha: float = Field(1.2, gt=0)
    osm_l: float = Field(0.5, ge=0, le=1)
    osm_class_vectors: Literal["classifier", "centers"] = Field("classifier", description="centers: 'CL centers'")
    attention: float = Field(0.0, ge=0, description="attention loss on randomly erased frames")
    attention_input: Literal["scores", "weights"] = Field(
        "scores",
        description="scores: the head's raw (ReLU'd) frame scores, as the AAAI-2020 code; weights: the softmaxed "
        "attention",
    )
    rank: float = Field(0.0, ge=0, description="frame-wise rank loss weight (lambda of All for One, Eq. 5)")
    rank_detach_thresholds: bool = Field(
        True, description="the rank loss's thresholds from earlier steps carry no gradient"
    )


class EvalRecipe(_Section):
    every: int = Field(10, ge=1, description="validate every N epochs (and after the last)")
    distance: Literal["cosine", "euclidean"] = Field(
        "cosine",
        description="cosine: mean of the L2-normalised clip features, as the live system matches; euclidean: "
        "squared Euclidean distance of the raw mean of clip features (the AAAI-2020 and Gao & Nevatia code)",
    )
    rerank: bool = Field(False, description="also report re-ranked validation mAP (selection stays on the plain mAP)")
    batch_clips: int = Field(64, ge=1)


class HpoRange(_Section):
    low: float
    high: float
    log: bool = Field(False, description="search on a log scale (learning rates, margins)")
    integer: bool = False


class HpoRecipe(_Section):
    """Named ranges for ``crosscam hpo``: recipe keys (``loss.osm_sigma``) -> ranges, searched with Ax."""

    parameters: dict[str, HpoRange] = Field(default_factory=dict)


class Recipe(_Section):
    name: str = "recipe"
    description: str = ""
    seed: int = 0
    amp: bool = Field(True, description="mixed precision on CUDA (ignored on the CPU)")
    data: DataRecipe = DataRecipe()
    model: ModelRecipe = ModelRecipe()
    sampler: SamplerRecipe = SamplerRecipe()
    augment: AugmentRecipe = AugmentRecipe()
    optim: OptimRecipe = OptimRecipe()
    loss: LossRecipe = LossRecipe()
    eval: EvalRecipe = EvalRecipe()
    hpo: HpoRecipe = HpoRecipe()


def load_recipe(source: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """A recipe from a YAML file or a bundled name (``RECIPES``), with ``--set`` overrides; errors name the key."""
    path = Path(source)
    if not path.is_file() and (RECIPES / f"{source}.yaml").is_file():
        path = RECIPES / f"{source}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in RECIPES.glob("*.yaml")))
        raise ConfigError(f"{source}: recipe not found; pass a YAML file or one of: {names}")
    return validated(Recipe, read_yaml(path), overrides, str(path))
