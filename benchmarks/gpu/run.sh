#!/usr/bin/env bash
# The GPU check for a short lease: import the carried archives, then `python -m harness gpu-check`.
#   bash benchmarks/gpu/run.sh ARCHIVE_DIR OUT_DIR [extra gpu-check options, e.g. --profile paper-dryrun]
# ARCHIVE_DIR holds cifar10-jpeg.tar.gz and tiny-imagenet-32.tar.gz (63 MB); OUT_DIR receives the JSON files and
# the log. Takes the budget of one 10-minute command (imports ~1 min, then --budget-s 480 by default).
set -euo pipefail
archives=${1:?usage: run.sh ARCHIVE_DIR OUT_DIR [gpu-check options]}
out=${2:?usage: run.sh ARCHIVE_DIR OUT_DIR [gpu-check options]}
shift 2
mkdir -p "$out"
export HARNESS_DATA_ROOT=${HARNESS_DATA_ROOT:-$out/../harness-data}
{
  nvidia-smi || echo "nvidia-smi: not available"
  python -m harness data import cifar10 "$archives/cifar10-jpeg.tar.gz"
  python -m harness data import tinyimagenet32 "$archives/tiny-imagenet-32.tar.gz"
  python -m harness gpu-check --out "$out" --budget-s 480 "$@"
} 2>&1 | tee "$out/gpu-check.log"
