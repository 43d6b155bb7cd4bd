"""The issue's first anchor, TF-IDF + logistic regression, on our cross-validation.

The issue quotes the anchors on a held-out set we do not have. This runs the first one on the
same 5 folds as `cargo xtask train-topics --cv-only` (fold = FNV-1a 64 of the row id mod 5)
and scores it the same way (top-1 in the gold set; per-topic F1 over the predicted sets,
second and third topics at >= 0.6 x the first's probability), so our figures can be read
against it. Not part of `cargo xtask bench`: it needs scikit-learn.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scikit-learn
    /tmp/venv/bin/python bench/topics-anchor.py
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

DATA = Path(__file__).resolve().parent.parent.parent / "shared/data/topics/dev.jsonl"
FOLDS = 5
SECOND_TOPIC_RATIO = 0.6


def fnv1a(text):
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def page_text(row):
    return " ".join([row["title"], row["description"], re.sub(r"[^a-zA-Z0-9]+", " ", row["url"])])


def f1(tp, fp, fn):
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def scores(rows, predictions):
    counts = {}
    for row, predicted in zip(rows, predictions):
        gold = row["top_level_ids"]
        for topic in set(predicted) | set(gold):
            tp_fp_fn = counts.setdefault(topic, [0, 0, 0])
            tp_fp_fn[0 if topic in predicted and topic in gold else 1 if topic in predicted else 2] += 1
    top1 = np.mean([p[0] in r["top_level_ids"] for r, p in zip(rows, predictions)])
    gold_f1 = [f1(*c) for c in counts.values() if c[0] + c[2] > 0]
    return top1, np.mean([f1(*c) for c in counts.values()]), np.mean(gold_f1)


def main():
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    texts = [page_text(r) for r in rows]
    labels = np.array([r["top_level_ids"][0] for r in rows])
    folds = np.array([fnv1a(r["id"]) % FOLDS for r in rows])
    predictions = [None] * len(rows)
    for fold in range(FOLDS):
        train, test = np.where(folds != fold)[0], np.where(folds == fold)[0]
        vectorisers = [
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        ]
        x_train = hstack([v.fit_transform([texts[i] for i in train]) for v in vectorisers]).tocsr()
        x_test = hstack([v.transform([texts[i] for i in test]) for v in vectorisers]).tocsr()
        model = LogisticRegression(C=30, max_iter=3000).fit(x_train, labels[train])
        for i, p in zip(test, model.predict_proba(x_test)):
            best = np.argsort(-p)[:3]
            predictions[i] = [model.classes_[j] for j in best if p[j] >= SECOND_TOPIC_RATIO * p[best[0]]]
    print("| rows | top-level top-1 | macro-F1 (gold ∪ predicted) | (gold classes) |")
    print("|---|---:|---:|---:|")
    for source in [None, "huffpost", "ukwa"]:
        picked = [i for i, r in enumerate(rows) if source in (None, r["source"])]
        top1, macro, gold = scores([rows[i] for i in picked], [predictions[i] for i in picked])
        print(f"| {source or 'all'} ({len(picked)}) | {100 * top1:.1f} % | {100 * macro:.1f} % | {100 * gold:.1f} % |")


if __name__ == "__main__":
    sys.exit(main())
