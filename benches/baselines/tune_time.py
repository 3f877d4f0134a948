"""Chooses the time-proximity prior of weitere's ranking policy on the dev halves only.

For every (shape, scale, weight) of the grid, runs `weitere eval --split dev --json` on the dev halves of
og2021-titles (German and English titles apart) and uci-news-stories — the corpora with publication times
and stories — and prints dev P@10, coverage and the mean P@10 over the three; the best mean whose coverage
stays at least 0.95 everywhere is the default. The test halves are never read here: `run.sh` reports them.

    target/baselines-venv/bin/python benches/baselines/tune_time.py --weitere target/release/weitere
    ... --shapes hyperbolic --scales 1 2 3 --weights 0.75 1     # a part of the grid
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from baselines import CORPORA, read_corpus, write_prepared

TUNED = ("og2021-titles-de", "og2021-titles-en", "uci-news-stories")
SHAPES = ("hyperbolic", "exponential")
SCALES_HOURS = (1, 2, 3, 6, 12, 24, 48, 96, 168)
WEIGHTS = (0.25, 0.5, 0.75, 1.0)
MIN_COVERAGE = 0.95


def dev_figures(binary: str, prepared: Path, label: str, k: int, flags: list[str]) -> dict[str, float]:
    """`weitere eval --split dev --json` on one prepared corpus with the given ranking flags."""
    command = [binary, "eval", "--input", str(prepared), "--label", label, "--k", str(k), "--split", "dev", "--json"]
    completed = subprocess.run([*command, *flags], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--weitere", required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--shapes", nargs="+", default=SHAPES)
    parser.add_argument("--scales", nargs="+", type=float, default=SCALES_HOURS)
    parser.add_argument("--weights", nargs="+", type=float, default=WEIGHTS)
    args = parser.parse_args()
    specs = [spec for spec in CORPORA if spec.name in TUNED]
    grid: list[tuple[str, list[str]]] = [("off", ["--time-scale-hours", "0"])]
    for shape, scale, weight in itertools.product(args.shapes, args.scales, args.weights):
        flags = ["--time-shape", shape, "--time-scale-hours", str(scale), "--time-weight", str(weight)]
        grid.append((f"{shape} {scale} h w {weight}", flags))
    with tempfile.TemporaryDirectory(prefix="weitere-tune-") as scratch:
        prepared = []
        for spec in specs:
            corpus = read_corpus(args.data / spec.path, spec.label, spec.lang, spec.name)
            path = Path(scratch) / f"{spec.name}.jsonl"
            write_prepared(corpus, path)
            prepared.append((spec, path))
        print("| prior | " + " | ".join(f"{spec.name} P@{args.k} (cov)" for spec in specs) + " | mean P |")
        print("|---|" + "---:|" * (len(specs) + 1))
        best: tuple[float, str] | None = None
        for name, flags in grid:
            figures = [dev_figures(args.weitere, path, spec.label, args.k, flags) for spec, path in prepared]
            mean = sum(f["precision_at_k"] for f in figures) / len(figures)
            cells = [f"{f['precision_at_k']:.3f} ({f['coverage']:.3f})" for f in figures]
            print(f"| {name} | " + " | ".join(cells) + f" | {mean:.4f} |", flush=True)
            if all(f["coverage"] >= MIN_COVERAGE for f in figures) and (best is None or mean > best[0]):
                best = (mean, name)
        print(f"\nbest on dev: {best[1] if best else 'none'} (mean P@{args.k} {best[0] if best else 0:.4f})", file=sys.stderr)


if __name__ == "__main__":
    main()
