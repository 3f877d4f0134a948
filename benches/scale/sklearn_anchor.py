"""scikit-learn anchor for weitere's scale benchmark, on an archive written by generate.py.

Two figures that weitere's own numbers are compared with, on the same text:

* fit: `TfidfVectorizer(sublinear_tf=True)` with its default analysis (lower case, tokens of two or more word
  characters, no stemming, no stop words), fit_transform on title + body of every article; CPU seconds
  (`time.process_time()`), wall seconds and documents per CPU-second. Reading the file is not timed;
* exact top-10: for seeded source articles, the cosine of the source's row with every article (the rows are
  L2-normalised, so cosine is the dot product) through an inverted index (the transposed matrix, built once
  and timed on its own), the source itself left out, ties broken by article order; p50 and p99 milliseconds
  per query.

Everything runs on one thread: the thread variables of the numeric libraries are set to 1 before numpy is
imported (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, if the machine sets them, are left alone). One JSON object
goes to stdout:

    target/scale-venv/bin/python benches/scale/sklearn_anchor.py target/scale/archive-100k.jsonl.gz
"""

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

DEFAULT_SOURCES = 1000
DEFAULT_SEED = 1
K = 10


def read_archive(path):
    """Returns the ids and the title + body texts of a JSON Lines archive (.jsonl or .jsonl.gz)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    ids = []
    texts = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                ids.append(row["id"])
                texts.append((row.get("title") or "") + "\n" + (row.get("body") or ""))
    return ids, texts


def fit(texts):
    """Fits the vectorizer; returns the document-term matrix, its vocabulary size and CPU and wall seconds."""
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    cpu_started = time.process_time()
    wall_started = time.perf_counter()
    matrix = vectorizer.fit_transform(texts)
    wall = time.perf_counter() - wall_started
    cpu = time.process_time() - cpu_started
    return matrix.tocsr(), len(vectorizer.vocabulary_), cpu, wall


def top_k(matrix, postings, source, k):
    """Indices of the k articles most cosine-similar to the source (itself excluded), best first."""
    scores = matrix[source] @ postings
    candidates = scores.indices
    values = scores.data
    keep = candidates != source
    candidates = candidates[keep]
    values = values[keep]
    if len(candidates) > k:
        best = np.argpartition(-values, k)[:k]
        candidates = candidates[best]
        values = values[best]
    order = np.lexsort((candidates, -values))
    return candidates[order]


def query_times(matrix, postings, sources, k):
    """Runs the exact top-k for every source; returns the milliseconds per query and the results."""
    times = []
    results = []
    for source in sources:
        started = time.perf_counter()
        neighbours = top_k(matrix, postings, source, k)
        times.append(1000 * (time.perf_counter() - started))
        results.append(neighbours)
    return np.array(times), results


def write_neighbours(path, ids, sources, results):
    """Writes one JSON line per source: its id and the ids of its top-k, best first."""
    with open(path, "w", encoding="utf-8") as handle:
        for source, neighbours in zip(sources, results):
            handle.write(json.dumps({"source": ids[source], "neighbours": [ids[i] for i in neighbours]}) + "\n")


def main():
    """Parses the command line, runs the fit and the queries, prints the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", help="archive written by generate.py (.jsonl.gz)")
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES, help=f"query articles (default {DEFAULT_SOURCES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed for picking the sources (default {DEFAULT_SEED})")
    parser.add_argument("--neighbours-out", help="also write each source's top-10 ids to this JSON Lines file")
    args = parser.parse_args()

    with threadpool_limits(limits=1):
        started = time.perf_counter()
        ids, texts = read_archive(args.archive)
        read_seconds = time.perf_counter() - started
        if len(ids) <= K:
            sys.exit(f"{args.archive}: need more than {K} articles")
        matrix, vocabulary, fit_cpu, fit_wall = fit(texts)
        del texts
        started = time.perf_counter()
        postings = matrix.T.tocsr()
        transpose_seconds = time.perf_counter() - started
        sources = random.Random(args.seed).sample(range(len(ids)), min(args.sources, len(ids)))
        times, results = query_times(matrix, postings, sources, K)

    if args.neighbours_out:
        write_neighbours(args.neighbours_out, ids, sources, results)
    figures = {
        "docs": len(ids),
        "fit_cpu_s": round(fit_cpu, 3),
        "fit_wall_s": round(fit_wall, 3),
        "docs_per_cpu_s": round(len(ids) / fit_cpu, 1),
        "top10_p50_ms": round(float(np.percentile(times, 50)), 3),
        "top10_p99_ms": round(float(np.percentile(times, 99)), 3),
        "sources": len(sources),
        "vocabulary": vocabulary,
        "nnz": int(matrix.nnz),
        "read_s": round(read_seconds, 3),
        "transpose_s": round(transpose_seconds, 3),
        "sklearn": sklearn.__version__,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
