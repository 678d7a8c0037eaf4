"""The label model: coefficients, category effects, the additive score components and the label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smp_spark.generate.common import DAY, TRAIN_START, _stream
from smp_spark.generate.people import Groups, Posts, Users
from smp_spark.generate.world import World


@dataclass(frozen=True)
class LabelModel:
    """Coefficients of the label model on the log2-views scale (see the module docstring)."""

    intercept: float = 5.7
    user_sd: float = 1.5
    category_sd: float = 0.35
    subcategory_sd: float = 0.3
    concept_sd: float = 0.65
    tags_coef: float = 0.4  # per unit of log1p(tag count)
    tags_center: float = 2.8  # about the mean log1p(tag count): the text term stays centred
    title_coef: float = 0.05  # per title word, up to 8 words
    title_center: float = 4.0  # about the mean of min(title words, 8)
    camera_title: float = -0.3  # default camera titles such as "IMG_1234"
    video: float = -0.4
    geo: float = 0.4
    hour_amplitude: float = 0.25  # hour effect = amplitude * cos(2 pi (hour - peak) / 24), UTC
    hour_peak_utc: int = 15
    weekday_effect: tuple = (0.05, 0.05, 0.03, 0.0, -0.05, -0.12, 0.04)  # Monday..Sunday, UTC
    trend_per_year: float = -0.35  # older posts had longer to collect views
    groups_coef: float = 0.8  # per unit of log1p(group count)
    member_coef: float = 0.2  # per unit of log(mean member_count) of the post's groups
    member_ref: float = 9.0  # log mean member_count at which the member term is zero
    image_coef: float = 0.45  # per unit of the photo's latent visual appeal, N(0, 1)
    noise_std: float = 1.35
    z_max: float = 16.56  # the largest real SMPD label

    def hour_effect(self) -> np.ndarray:
        return self.hour_amplitude * np.cos(2 * np.pi * (np.arange(24) - self.hour_peak_utc) / 24)


@dataclass
class Effects:
    category: np.ndarray
    subcategory: np.ndarray
    concept: np.ndarray


def draw_effects(seed: int, world: World, model: LabelModel) -> Effects:
    rng = _stream(seed, "effects")
    return Effects(
        rng.normal(0, model.category_sd, len(world.categories)),
        rng.normal(0, model.subcategory_sd, len(world.subcategories)),
        rng.normal(0, model.concept_sd, len(world.concepts)),
    )


def mean_member_count(posts: Posts, groups: Groups) -> np.ndarray:
    """Mean member_count over each post's groups (0 when it has none)."""
    row_post = np.repeat(np.arange(posts.n), posts.n_groups)
    total = np.bincount(row_post, weights=groups.member_count[posts.group_ids], minlength=posts.n)
    return total / np.maximum(posts.n_groups, 1)


def score_components(
    posts: Posts, users: Users, groups: Groups, world: World, effects: Effects, model: LabelModel
) -> dict[str, np.ndarray]:
    """Each additive term of the noiseless score ``z`` (log2 views) per post."""
    sub = world.concept_sub[posts.concept]
    hour = (posts.postdate // 3600) % 24
    weekday = (posts.postdate // DAY + 3) % 7  # 1970-01-01 was a Thursday
    in_groups = posts.n_groups > 0
    log_member = np.log(np.maximum(mean_member_count(posts, groups), 1.0))
    return {
        "category": (
            effects.category[world.sub_category[sub]] + effects.subcategory[sub] + effects.concept[posts.concept]
        ),
        "user": model.user_sd * users.latent[posts.owner],
        "text": (
            model.tags_coef * (np.log1p(posts.n_tags) - model.tags_center)
            + model.title_coef * (np.minimum(posts.title_words, 8) - model.title_center)
            + model.camera_title * posts.camera_title
            + model.video * posts.is_video
        ),
        "time": (
            model.hour_effect()[hour]
            + np.array(model.weekday_effect)[weekday]
            + model.trend_per_year * (posts.postdate - TRAIN_START) / (365.25 * DAY)
        ),
        "geo": model.geo * posts.has_geo,
        "groups": (
            model.groups_coef * np.log1p(posts.n_groups)
            + model.member_coef * in_groups * (log_member - model.member_ref)
        ),
        "image": model.image_coef * posts.appeal,
    }


def label_of(z: np.ndarray, model: LabelModel) -> np.ndarray:
    """log2-views score -> SMPD label: log2 of a whole view count (at least 2), two decimals."""
    views = np.maximum(2.0, np.rint(np.exp2(np.minimum(z, model.z_max))))
    return np.round(np.log2(views), 2)
