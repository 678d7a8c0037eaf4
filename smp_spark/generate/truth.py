"""Ground truth: settings, coefficients, effects, oracle and baseline metrics, label stats, counts."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from smp_spark.generate.label import Effects, LabelModel, mean_member_count
from smp_spark.generate.people import Groups, Posts, Users
from smp_spark.generate.release import UserText
from smp_spark.generate.world import World

GENERATOR_VERSION = "1.0"


def _rounded(x: float) -> float | None:
    """4 decimals; None (JSON null) for a correlation undefined on a constant column."""
    return round(float(x), 4) if np.isfinite(x) else None


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    return _rounded(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    try:
        from scipy.stats import rankdata
    except ImportError:
        import pandas as pd

        return _pearson(pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy())
    return _pearson(rankdata(a), rankdata(b))


def _metrics(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    return {
        "mae": round(float(np.mean(np.abs(pred - label))), 4),
        "rmse": round(float(np.sqrt(np.mean((pred - label) ** 2))), 4),
        "src": _spearman(pred, label),
    }


def _stats(label: np.ndarray) -> dict[str, float]:
    return {
        k: round(float(f(label)), 4)
        for k, f in [("mean", np.mean), ("std", np.std), ("min", np.min), ("median", np.median), ("max", np.max)]
    }


def ground_truth(
    posts: Posts,
    users: Users,
    groups: Groups,
    world: World,
    text: UserText,
    effects: Effects,
    model: LabelModel,
    components: dict[str, np.ndarray],
    label: np.ndarray,
    oracle: np.ndarray,
    settings: dict,
    files: dict,
    images: dict,
) -> dict:
    """Settings, coefficients and effects, oracle and baseline metrics, label stats and counts;
    ``images`` (the image section: style, kinds, bytes) is stored as given."""
    train, test = slice(0, posts.n_train), slice(posts.n_train, posts.n)
    train_median = float(np.median(label[train]))
    releases = {"train": train, "test": test} if posts.n > posts.n_train else {"train": train}
    features = {
        "groups": posts.n_groups,
        "log1p_groups": np.log1p(posts.n_groups),
        "group_mean_member_count": mean_member_count(posts, groups),
        "user_effect_latent": components["user"],
        "photo_count": text.photo_count[posts.owner],
        "ispro": users.ispro[posts.owner],
        "tag_count": posts.n_tags,
        "title_words": posts.title_words,
        "has_geo": posts.has_geo,
        "image_appeal_latent": posts.appeal,
    }
    return {
        "generator_version": GENERATOR_VERSION,
        **settings,
        "label_model": asdict(model),
        "noise_std": model.noise_std,
        "hour_effect_utc": [round(float(x), 4) for x in model.hour_effect()],
        "category_effects": dict(zip(world.categories, np.round(effects.category, 4).tolist())),
        "subcategory_effects": dict(zip(world.subcategories, np.round(effects.subcategory, 4).tolist())),
        "concept_effects": dict(zip(world.concepts, np.round(effects.concept, 4).tolist())),
        "oracle": {name: _metrics(oracle[rows], label[rows]) for name, rows in releases.items()},
        "median_baseline": {
            name: {"median": train_median, "mae": round(float(np.mean(np.abs(label[rows] - train_median))), 4)}
            for name, rows in releases.items()
        },
        "label_stats": {name: _stats(label[rows]) for name, rows in releases.items()},
        "component_std_train": {k: round(float(np.std(v[train])), 4) for k, v in components.items()},
        "pearson_with_label_train": {k: _pearson(v[train], label[train]) for k, v in features.items()},
        "counts": {
            "train_posts": posts.n_train,
            "test_posts": posts.n - posts.n_train,
            "train_users": users.n_train,
            "test_users": int(len(np.unique(posts.owner[test]))),
            "new_test_users": users.n - users.n_train,
            "users": users.n,
            "groups": len(groups.ids),
            "groups_used": int(len(np.unique(posts.group_ids))),
            "post_group_memberships": int(len(posts.group_ids)),
            "posts_with_groups_share_train": round(float(np.mean(posts.n_groups[train] > 0)), 4),
            "files": files,
        },
        "images": images,
    }
