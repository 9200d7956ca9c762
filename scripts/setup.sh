#!/usr/bin/env bash
# Create .venv (if needed) and install torch==2.13.0 and g2lstm with every extra.
# Sourced by .ci/run and scripts/reproduce.sh; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first and pinned: a bare or open-ended torch requirement would pull a multi-GB CUDA build.
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test]"
# Real corpora beside the checkout (this project's machines); elsewhere they are downloaded.
if [ -z "${G2LSTM_DATA:-}" ] && [ -d ../shared/data ]; then
  G2LSTM_DATA="$(cd ../shared/data && pwd)"
  export G2LSTM_DATA
fi
