"""Offline comparison of weitere with two textbook baselines on labelled news corpora.

For every labelled corpus (`*/*.jsonl.gz` under the data directory) this script

* runs `weitere eval --json` and reads its figures, and times `weitere index` and `weitere batch`;
* runs baseline A, scikit-learn TF-IDF (`sublinear_tf=True`) with exact cosine k-nearest neighbours;
* runs baseline B, BM25 "More Like This" with Lucene's MLT defaults on top of bm25s;

scores the baselines with the same definitions as `weitere eval` (see `src/evaluate/`) and prints one
markdown table, which it also writes to a file.

Relevance is leave-one-out: the sources are the labelled articles, and the relevant set of a source is every
other article with the same label. Exact (title, body) copies are dropped first, keeping the first one.
Everything is deterministic except the timings: ties are broken towards the article read first.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

import bm25s
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

# Two articles whose word sets overlap at least this much (Jaccard) are near-duplicates.
NEAR_DUPLICATE_JACCARD = 0.8

# Lucene MoreLikeThis defaults.
MLT_MIN_TERM_FREQ = 2
MLT_MIN_DOC_FREQ = 5
MLT_MAX_QUERY_TERMS = 25
# Lucene BM25Similarity defaults.
BM25_K1 = 1.2
BM25_B = 0.75
# Languages whose stop-word list bm25s ships (ISO 639-1); other articles keep their stop words.
BM25S_STOPWORD_LANGS = frozenset({"da", "de", "en", "es", "fr", "it", "ko", "nl", "no", "pt", "ru", "sv", "tr", "zh"})

# Rows of the similarity matrix computed at once by the TF-IDF batch.
TFIDF_BATCH_ROWS = 256

Row = dict[str, float | int | None]


@dataclass(frozen=True)
class Article:
    """One news article as the systems see it."""

    id: str
    title: str
    body: str
    lang: str
    label: str | None

    @property
    def text(self) -> str:
        """Title and body as one text, the input of both baselines."""
        return f"{self.title}\n{self.body}"

    @property
    def words(self) -> frozenset[str]:
        """Lower-cased whitespace-separated words: the system-independent view for near-duplicates."""
        return frozenset(f"{self.title} {self.body}".lower().split())


@dataclass(frozen=True)
class Corpus:
    """A labelled corpus after exact duplicates were dropped."""

    name: str
    path: Path
    articles: list[Article]
    duplicates_dropped: int

    @property
    def sources(self) -> list[int]:
        """Positions of the labelled articles, in reading order."""
        return [i for i, article in enumerate(self.articles) if article.label is not None]

    @property
    def label_sizes(self) -> Counter[str]:
        """How many articles carry each label."""
        return Counter(article.label for article in self.articles if article.label is not None)

    @property
    def sources_without_relevant(self) -> int:
        """Sources whose label no other article carries."""
        return sum(size == 1 for size in self.label_sizes.values())


@dataclass(frozen=True)
class Run:
    """What one baseline returned for a corpus, and how long it took."""

    lists: list[list[int]]
    latencies_ms: list[float]
    index_s: float
    batch_s: float


class Baseline(Protocol):
    """A recommender that is fitted on all articles and then asked about one of them at a time."""

    name: str
    ann_recall: float | None

    def fit(self, articles: Sequence[Article]) -> None:
        """Indexes the articles."""

    def query(self, source: int, k: int) -> list[int]:
        """Up to k positions of articles related to `source`, best first, never `source` itself."""

    def batch(self, k: int) -> list[list[int]]:
        """The lists of all articles, in position order."""


def top_k(scores: np.ndarray, k: int, exclude: int) -> list[int]:
    """Positions of the k highest scores, best first, ties to the lower position, without `exclude`."""
    order = np.argsort(-scores, kind="stable")
    return [int(i) for i in order[: k + 1] if i != exclude][:k]


class TfidfCosine:
    """Baseline A: scikit-learn TF-IDF with sublinear tf, exact cosine k-nearest neighbours."""

    name = "sklearn TF-IDF + exact cosine"
    ann_recall: float | None = 1.0

    def fit(self, articles: Sequence[Article]) -> None:
        # Rows are L2-normalised, so a dot product is the cosine.
        self.vectors = TfidfVectorizer(sublinear_tf=True).fit_transform([a.text for a in articles])

    def query(self, source: int, k: int) -> list[int]:
        # Sums in the same order as the batch's sparse product, so both give bit-identical scores.
        scores = self.vectors @ self.vectors[source].toarray().ravel()
        return top_k(scores, k, source)

    def batch(self, k: int) -> list[list[int]]:
        lists: list[list[int]] = []
        for start in range(0, self.vectors.shape[0], TFIDF_BATCH_ROWS):
            block = (self.vectors[start : start + TFIDF_BATCH_ROWS] @ self.vectors.T).toarray()
            lists.extend(top_k(scores, k, source) for source, scores in enumerate(block, start))
        return lists


class Bm25MoreLikeThis:
    """Baseline B: Lucene/Elasticsearch "More Like This" with BM25 scoring (bm25s).

    The query of a source is its `MLT_MAX_QUERY_TERMS` best terms by tf * idf among those occurring at least
    `MLT_MIN_TERM_FREQ` times in it and in at least `MLT_MIN_DOC_FREQ` articles, run as one OR query whose
    score is the sum of the terms' BM25 scores. Articles matching no query term are not returned.
    """

    name = "BM25 More-Like-This (bm25s)"
    ann_recall: float | None = None

    def fit(self, articles: Sequence[Article]) -> None:
        self.tokens = tokenize(articles)
        self.index = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
        self.index.index(self.tokens, show_progress=False)
        count = len(self.tokens)
        doc_freqs = Counter(term for terms in self.tokens for term in set(terms))
        self.idf = {
            term: math.log(1 + (count - df + 0.5) / (df + 0.5))
            for term, df in doc_freqs.items()
            if df >= MLT_MIN_DOC_FREQ
        }

    def query_terms(self, source: int) -> list[str]:
        """The source's MLT query terms, best first (ties in term order, as in Lucene)."""
        scored = [
            (-tf * self.idf[term], term)
            for term, tf in Counter(self.tokens[source]).items()
            if tf >= MLT_MIN_TERM_FREQ and term in self.idf
        ]
        return [term for _, term in sorted(scored)[:MLT_MAX_QUERY_TERMS]]

    def query(self, source: int, k: int) -> list[int]:
        terms = self.query_terms(source)
        if not terms:
            return []
        scores = self.index.get_scores(terms)
        return [i for i in top_k(scores, k, source) if scores[i] > 0]

    def batch(self, k: int) -> list[list[int]]:
        return [self.query(source, k) for source in range(len(self.tokens))]


def tokenize(articles: Sequence[Article]) -> list[list[str]]:
    """bm25s's default tokens (lower-cased words of two or more characters) without the article
    language's stop words."""
    positions_by_lang: dict[str, list[int]] = {}
    for position, article in enumerate(articles):
        positions_by_lang.setdefault(article.lang, []).append(position)
    tokens: list[list[str]] = [[] for _ in articles]
    for lang, positions in sorted(positions_by_lang.items()):
        stopwords = lang if lang in BM25S_STOPWORD_LANGS else None
        texts = [articles[p].text for p in positions]
        terms = bm25s.tokenize(texts, stopwords=stopwords, return_ids=False, show_progress=False)
        for position, article_terms in zip(positions, terms, strict=True):
            tokens[position] = article_terms
    return tokens


def read_corpus(path: Path, label: str) -> Corpus:
    """Reads JSON Lines (plain or gzip) and drops articles whose (title, body) repeats an earlier one."""
    opener: Callable[..., TextIO] = gzip.open if path.suffix == ".gz" else open
    articles: list[Article] = []
    seen: set[tuple[str, str]] = set()
    read = 0
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            read += 1
            article = Article(
                id=str(record["id"]),
                title=record.get("title") or "",
                body=record.get("body") or "",
                lang=record.get("lang") or "",
                label=record.get(label) or None,
            )
            if (article.title, article.body) not in seen:
                seen.add((article.title, article.body))
                articles.append(article)
    name = path.name.removesuffix(".gz").removesuffix(".jsonl")
    return Corpus(name=name, path=path, articles=articles, duplicates_dropped=read - len(articles))


def run_baseline(baseline: Baseline, corpus: Corpus, k: int) -> Run:
    """Fits the baseline, asks it about every source one at a time, then times the all-articles batch."""
    started = time.perf_counter()
    baseline.fit(corpus.articles)
    index_s = time.perf_counter() - started

    lists: list[list[int]] = []
    latencies_ms: list[float] = []
    for source in corpus.sources:
        started = time.perf_counter()
        lists.append(baseline.query(source, k))
        latencies_ms.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    baseline.batch(k)
    batch_s = time.perf_counter() - started
    return Run(lists=lists, latencies_ms=latencies_ms, index_s=index_s, batch_s=batch_s)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two word sets; 0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def dcg(hits: Sequence[bool]) -> float:
    """Binary discounted cumulative gain: a hit at rank i (from 1) gains 1 / log2(i + 1)."""
    return sum(1 / math.log2(rank + 1) for rank, hit in enumerate(hits, 1) if hit)


def count_near_duplicates(source: int, items: Sequence[int], words: Sequence[frozenset[str]]) -> int:
    """List items that near-duplicate the source or an item ranked above them."""
    return sum(
        any(jaccard(words[earlier], words[item]) >= NEAR_DUPLICATE_JACCARD for earlier in [source, *items[:position]])
        for position, item in enumerate(items)
    )


def mean_pairwise_jaccard(items: Sequence[int], words: Sequence[frozenset[str]]) -> float:
    """Mean word-set Jaccard over all pairs of a list of two or more items."""
    pairs = [(a, b) for position, a in enumerate(items) for b in items[position + 1 :]]
    return sum(jaccard(words[a], words[b]) for a, b in pairs) / len(pairs)


def percentile(values: Sequence[float], quantile: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(quantile * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; 0 for no values."""
    return sum(values) / len(values) if values else 0.0


def score(corpus: Corpus, lists: Sequence[list[int]], k: int) -> Row:
    """The quality figures of one list per source, keyed like the JSON of `weitere eval`."""
    articles = corpus.articles
    words = [article.words for article in articles]
    label_sizes = corpus.label_sizes
    precision, recall, ndcg, reciprocal_rank, similarity = [], [], [], [], []
    duplicates = recommended = full_lists = self_recommendations = 0
    for source, items in zip(corpus.sources, lists, strict=True):
        label = articles[source].label
        assert label is not None, "sources are labelled"
        relevant_count = label_sizes[label] - 1
        hits = [item != source and articles[item].label == label for item in items]
        if relevant_count > 0:
            precision.append(sum(hits) / k)
            recall.append(sum(hits) / relevant_count)
            ndcg.append(dcg(hits) / dcg([True] * min(k, relevant_count)))
            reciprocal_rank.append(next((1 / rank for rank, hit in enumerate(hits, 1) if hit), 0.0))
        full_lists += len(items) == k
        recommended += len(items)
        duplicates += count_near_duplicates(source, items, words)
        if len(items) >= 2:
            similarity.append(mean_pairwise_jaccard(items, words))
        self_recommendations += items.count(source)
    return {
        "precision_at_k": mean(precision),
        "recall_at_k": mean(recall),
        "ndcg_at_k": mean(ndcg),
        "mrr": mean(reciprocal_rank),
        "coverage": full_lists / len(lists) if lists else 0.0,
        "duplicate_rate": duplicates / recommended if recommended else 0.0,
        "intra_list_similarity": mean(similarity),
        "self_recommendations": self_recommendations,
    }


def baseline_row(baseline: Baseline, corpus: Corpus, k: int) -> Row:
    """Runs and scores one baseline on one corpus."""
    run = run_baseline(baseline, corpus, k)
    return {
        **score(corpus, run.lists, k),
        "ann_recall_at_k": baseline.ann_recall,
        "latency_p50_ms": percentile(run.latencies_ms, 0.50),
        "latency_p99_ms": percentile(run.latencies_ms, 0.99),
        "index_s": run.index_s,
        "batch_s": run.batch_s,
    }


def timed_command(command: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Runs a command, capturing its output, and returns it with its wall time in seconds."""
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    return completed, time.perf_counter() - started


def succeeded(completed: subprocess.CompletedProcess[str]) -> bool:
    """Whether a command exited 0; warns on stderr with the command's last error line otherwise."""
    if completed.returncode == 0:
        return True
    lines = completed.stderr.strip().splitlines() or ["(no error output)"]
    print(f"warning: `{shlex.join(completed.args)}` exited {completed.returncode}: {lines[-1]}", file=sys.stderr)
    return False


def parse_eval_json(stdout: str) -> Row:
    """The JSON object `weitere eval --json` printed (all of stdout, else its last line that is one); empty if
    there is none."""
    for candidate in [stdout, *reversed(stdout.splitlines())]:
        try:
            parsed = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            return parsed
    print("warning: `weitere eval --json` printed no JSON object", file=sys.stderr)
    return {}


def weitere_row(binary: str, corpus: Corpus, k: int, label: str) -> Row:
    """Figures from `weitere eval`, plus the wall times of `weitere index` and `weitere batch`."""
    eval_command = [binary, "eval", "--input", str(corpus.path), "--label", label, "--k", str(k), "--json"]
    completed, _ = timed_command(eval_command)
    row = parse_eval_json(completed.stdout) if succeeded(completed) else {}
    if row.get("sources") not in (None, len(corpus.sources)):
        print(
            f"warning: weitere evaluated {row['sources']} sources of {corpus.name}, the baselines "
            f"{len(corpus.sources)}",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="weitere-baselines-") as scratch:
        model = Path(scratch) / "model"
        completed, index_s = timed_command([binary, "index", "--input", str(corpus.path), "--out", str(model)])
        row["index_s"] = index_s if succeeded(completed) else None
        if row["index_s"] is not None:
            related = Path(scratch) / "related.jsonl"
            batch_command = [binary, "batch", "--model", str(model), "--out", str(related), "--k", str(k)]
            completed, batch_s = timed_command(batch_command)
            row["batch_s"] = batch_s if succeeded(completed) else None
    return row


def number(digits: int) -> Callable[[object], str]:
    """Formats a number with fixed decimals, anything else (a missing figure) as n/a."""

    def format_value(value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "n/a"
        return f"{value:.{digits}f}"

    return format_value


COLUMNS: list[tuple[str, str, Callable[[object], str]]] = [
    ("P@k", "precision_at_k", number(3)),
    ("R@k", "recall_at_k", number(3)),
    ("nDCG@k", "ndcg_at_k", number(3)),
    ("MRR", "mrr", number(3)),
    ("coverage", "coverage", number(3)),
    ("dup rate", "duplicate_rate", number(3)),
    ("ILS", "intra_list_similarity", number(3)),
    ("self recs", "self_recommendations", number(0)),
    ("ANN recall", "ann_recall_at_k", number(3)),
    ("p50 ms", "latency_p50_ms", number(2)),
    ("p99 ms", "latency_p99_ms", number(2)),
    ("index s", "index_s", number(2)),
    ("batch s", "batch_s", number(2)),
]


def table(rows: Sequence[tuple[str, str, Row]]) -> str:
    """One markdown table of (corpus, system, figures) rows."""
    header = ["corpus", "system", *(title for title, _, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(COLUMNS)) + "|"]
    for corpus, system, row in rows:
        cells = [corpus, system, *(fmt(row.get(key)) for _, key, fmt in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def corpus_note(corpus: Corpus) -> str:
    """How many articles and sources a corpus gave, and how many sources had nothing relevant."""
    return (
        f"- {corpus.name}: {len(corpus.articles) + corpus.duplicates_dropped} articles read, "
        f"{corpus.duplicates_dropped} exact duplicates dropped, {len(corpus.sources)} sources, "
        f"{corpus.sources_without_relevant} without any relevant article (left out of P, R, nDCG and MRR)"
    )


def report(corpora: Sequence[Corpus], rows: Sequence[tuple[str, str, Row]], k: int, label: str, command: str) -> str:
    """The header line, the table and one note per corpus."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"Baselines, {stamp}, nproc {os.cpu_count()}, k = {k}, label `{label}`, command: `{command}`"
    notes = "\n".join(corpus_note(corpus) for corpus in corpora)
    return "\n\n".join([header, table(rows), notes]) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="directory holding <name>/*.jsonl.gz corpora")
    parser.add_argument("--k", type=int, default=10, help="list size (default 10)")
    parser.add_argument("--label", default="category", choices=["category", "story"], help="relevance label")
    parser.add_argument("--weitere", help="path of the weitere binary; without it, only the baselines run")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--command", help="command line to state in the report (default: this one)")
    args = parser.parse_args()
    if args.k < 1:
        parser.error("--k must be at least 1")
    if args.weitere and not os.access(args.weitere, os.X_OK):
        parser.error(f"--weitere {args.weitere}: not an executable file")
    return args


def main() -> None:
    args = parse_args()
    paths = sorted(args.data.glob("*/*.jsonl.gz"))
    if not paths:
        sys.exit(f"error: no */*.jsonl.gz corpus under {args.data}")
    corpora = []
    for path in paths:
        corpus = read_corpus(path, args.label)
        if corpus.sources:
            corpora.append(corpus)
        else:
            print(f"warning: skipping {path}: no article has a `{args.label}` label", file=sys.stderr)
    if not corpora:
        sys.exit(f"error: no corpus under {args.data} has a `{args.label}` label")
    rows: list[tuple[str, str, Row]] = []
    for corpus in corpora:
        print(f"{corpus.name}: {len(corpus.articles)} articles, {len(corpus.sources)} sources", file=sys.stderr)
        if args.weitere:
            rows.append((corpus.name, "weitere", weitere_row(args.weitere, corpus, args.k, args.label)))
        for baseline in (TfidfCosine(), Bm25MoreLikeThis()):
            rows.append((corpus.name, baseline.name, baseline_row(baseline, corpus, args.k)))
    command = args.command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    text = report(corpora, rows, args.k, args.label, command)
    print(text, end="")
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
