"""Single-node pandas build of the core features (no embeddings), to measure the Spark job against.

This is what a user would otherwise write: read the bronze Delta tables into pandas (delta-rs),
compute the same families as ``jobs/build_features.py`` (split, time, geo, text stats, TF-IDF +
PCA, category encodings, user profile and point-in-time history, group aggregates), and write
one Parquet file. It is a benchmark only; the product's features are the Spark ones.

    .venv/bin/python benchmarks/measure.py --label "pandas features 680K" -- \\
        .venv/bin/python benchmarks/pandas_features.py --lake lake --out /tmp/pandas_features.parquet
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from deltalake import DeltaTable
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import TfidfVectorizer

DAY = 86_400


def read(lake: str, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    return DeltaTable(f"{lake}/{name}").to_pandas(columns=columns)


def chronological_split(posts: pd.DataFrame, train: float = 0.8, valid: float = 0.1) -> pd.Series:
    cut_train, cut_valid = np.quantile(posts["Postdate"], [train, train + valid])
    return pd.Series(
        np.where(posts["Postdate"] <= cut_train, "train", np.where(posts["Postdate"] <= cut_valid, "valid", "test")),
        index=posts.index,
    )


def time_and_geo(df: pd.DataFrame) -> None:
    stamp = pd.to_datetime(df["Postdate"], unit="s", utc=True)
    df["hour"], df["day"], df["weekday"] = stamp.dt.hour, stamp.dt.day, stamp.dt.weekday
    df["week_hour"] = df["weekday"] * 24 + df["hour"]
    df["iso_week"], df["month"] = stamp.dt.isocalendar().week.astype(int), stamp.dt.month
    df["account_age_days"] = (df["Postdate"] - df["photo_firstdate"]) / DAY
    taken = df["photo_firstdatetaken"].fillna("").astype(str)
    first = pd.to_datetime(taken.str[:8].where(taken.str.fullmatch(r"\d{10}")), format="%Y%m%d", errors="coerce")
    first = first.fillna(pd.to_datetime(taken.str[:10], format="%Y-%m-%d", errors="coerce"))
    first = first.where(first.dt.year >= 1970)
    df["days_since_first_taken"] = (stamp.dt.tz_localize(None).dt.normalize() - first).dt.days
    located = df["Latitude"].notna() & ~((df["Latitude"] == 0) & (df["Longitude"] == 0))
    df["has_geo"] = located.astype(int)
    df["latitude"], df["longitude"] = df["Latitude"].where(located), df["Longitude"].where(located)


def text_stats(df: pd.DataFrame) -> None:
    for name, column in (("title", "Title"), ("tags", "Alltags")):
        text = df[column].fillna("")
        df[f"{name}_len"] = text.str.len()
        df["title_words" if name == "title" else "tag_count"] = text.str.split().str.len()
    df["is_video"] = (df["Mediatype"].fillna("") == "video").astype(int)


def user_profile(df: pd.DataFrame) -> None:
    df["photo_count_log"] = np.log1p(df["photo_count"])
    for column in ("ispro", "canbuypro", "timezone_id"):
        df[column] = pd.to_numeric(df[column], errors="coerce")
    df["user_description_nonzero"] = [
        np.count_nonzero(v) / len(v) if v is not None and len(v) else np.nan for v in df["user_description"]
    ]
    df["has_location_description"] = df["location_description"].notna().astype(int)
    df["user_contacts_log"] = np.log1p(df["contacts_count"])
    df["user_public_groups_log"] = np.log1p(df["public_groups_count"])


def tfidf_pca(df: pd.DataFrame, train: pd.Series) -> None:
    for prefix, column in (("title", "Title"), ("tags", "Alltags")):
        text = df[column].fillna("").str.lower()
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), max_features=2000, min_df=5)
        # like Spark ML's PCA: the 2000 x 2000 covariance of the training rows, its top eigenvectors
        pca = PCA(20, svd_solver="covariance_eigh")
        pca.fit(vectorizer.fit_transform(text[train]))
        reduced = pca.transform(vectorizer.transform(text))
        for i in range(20):
            df[f"{prefix}_svd_{i}"] = reduced[:, i]


def category_encodings(df: pd.DataFrame, train: pd.Series, folds: int = 5, smoothing: float = 20.0) -> None:
    fold = pd.util.hash_array(df["Pid"].to_numpy()) % folds
    prior = df.loc[train, "label"].mean()
    for column in ("Category", "Subcategory", "Concept"):
        counts = df.loc[train, column].value_counts()  # most frequent first, ties alphabetical
        order = sorted(counts.index, key=lambda v: (-counts[v], v))
        df[f"{column.lower()}_idx"] = df[column].map({v: i for i, v in enumerate(order)}).fillna(len(order))
        stats = df[train].groupby(column)["label"].agg(["sum", "count"])
        df[f"{column.lower()}_freq"] = df[column].map(stats["count"]).fillna(0) / train.sum()
        total_sum = df[column].map(stats["sum"]).fillna(0)
        total_n = df[column].map(stats["count"]).fillna(0)
        per_fold = (
            df[train].assign(fold=fold[train.to_numpy()]).groupby([column, "fold"])["label"].agg(["sum", "count"])
        )
        key = pd.MultiIndex.from_arrays([df[column], fold])
        own_sum = pd.Series(per_fold["sum"].reindex(key).to_numpy(), index=df.index).fillna(0).where(train, 0)
        own_n = pd.Series(per_fold["count"].reindex(key).to_numpy(), index=df.index).fillna(0).where(train, 0)
        df[f"{column.lower()}_te"] = (total_sum - own_sum + smoothing * prior) / (total_n - own_n + smoothing)


def user_history(df: pd.DataFrame, train: pd.Series) -> None:
    """Strictly earlier posts of the user (same-second posts excluded), training labels only."""
    df["_train_label"] = df["label"].where(train)
    df.sort_values(["Uid", "Postdate", "Pid"], inplace=True)
    per_second = df.groupby(["Uid", "Postdate"]).agg(
        n=("Pid", "size"), n_lab=("_train_label", "count"), s=("_train_label", "sum")
    )
    grouped = per_second.groupby(level="Uid")
    earlier = grouped.cumsum() - per_second
    last = df.dropna(subset=["_train_label"]).groupby(["Uid", "Postdate"])["_train_label"].last()
    previous_last = last.groupby(level="Uid").shift(1)
    prev_time = per_second.reset_index().groupby("Uid")["Postdate"].shift(1).to_numpy()
    earlier = earlier.assign(prev_time=prev_time)
    joined = df.join(earlier, on=["Uid", "Postdate"])
    df["user_prev_posts"] = joined["n"]
    df["user_prev_train_labels"] = joined["n_lab"]
    df["user_prev_mean_label"] = (joined["s"] / joined["n_lab"]).where(joined["n_lab"] > 0)
    df["user_days_since_prev_post"] = (df["Postdate"] - joined["prev_time"]) / DAY
    # latest training label strictly before this second: forward-fill within the user
    latest = df.join(previous_last.rename("_pl"), on=["Uid", "Postdate"])["_pl"]
    df["user_prev_last_label"] = latest
    df.drop(columns="_train_label", inplace=True)


def group_features(df: pd.DataFrame, lake: str) -> pd.DataFrame:
    memberships = read(lake, "bronze/post_groups", ["Pid", "group_id"]).merge(
        read(lake, "bronze/groups", ["group_id", "member_count", "pool_count"]), on="group_id"
    )
    per_post = memberships.groupby("Pid").agg(
        group_count=("group_id", "size"),
        m_mean=("member_count", "mean"),
        m_max=("member_count", "max"),
        m_sum=("member_count", "sum"),
        p_mean=("pool_count", "mean"),
        p_max=("pool_count", "max"),
    )
    status = read(lake, "bronze/scrape_status", ["Pid", "status"])
    ok = set(status.loc[status["status"] == "ok", "Pid"])
    out = df.join(per_post, on="Pid")
    scraped = out["Pid"].isin(ok)
    out["group_count_raw"] = out["group_count"].fillna(0).where(scraped)
    for column in ("group_count", "m_mean", "m_max", "m_sum", "p_mean", "p_max"):
        out[column] = np.log1p(out[column].fillna(0)).where(scraped)
    out["groups_scraped"] = scraped.astype(int)
    return out


def build(lake: str) -> pd.DataFrame:
    posts = read(lake, "bronze/posts")  # each post carries its own user record (point in time)
    users = read(lake, "bronze/users", ["Uid", "contacts_count", "public_groups_count"])  # scraped
    df = posts.merge(users, on="Uid", how="left")
    df["split"] = chronological_split(df)
    train = df["split"] == "train"
    time_and_geo(df)
    text_stats(df)
    tfidf_pca(df, train)
    category_encodings(df, train)
    user_profile(df)
    user_history(df, train)
    return group_features(df, lake)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", default="lake")
    parser.add_argument("--out", default="/tmp/pandas_features.parquet")
    args = parser.parse_args()
    started = time.time()
    df = build(args.lake)
    df.drop(columns=[c for c in df.columns if df[c].dtype == object and c not in ("Uid", "split")]).to_parquet(args.out)
    print(f"pandas features: {len(df)} posts, {df.shape[1]} columns, {time.time() - started:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()
