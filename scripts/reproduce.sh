#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run the paper's study and write a report.
#   bash scripts/reproduce.sh                 # tiny scale, a few minutes on 2 CPU cores
#   bash scripts/reproduce.sh --scale cpu     # hours; any `g2lstm reproduce` option works
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/setup.sh
if [ "$#" -eq 0 ]; then
  set -- --scale tiny -o runs/reproduce-tiny
fi
g2lstm reproduce "$@"
