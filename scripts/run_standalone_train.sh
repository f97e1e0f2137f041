#!/usr/bin/env bash
# Train one preset in one process.
#
#   scripts/run_standalone_train.sh PRESET [DATA] [ms-gan train flags...]
#
# Runs `python -m ms_gan train --preset PRESET --data DATA --out runs/PRESET [flags]`
# (DATA defaults to 'builtin'; a later --out in the flags wins). PYTHON selects the
# interpreter that has ms_gan installed (default: python3 on PATH).
# For several workers see scripts/run_distribute_train.sh.
set -e

if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
    echo "usage: $0 PRESET [DATA] [ms-gan train flags...]" >&2
    echo "  e.g. $0 dcgan_digits8 builtin --epochs 5   ('ms-gan presets' lists the presets)" >&2
    exit 2
fi
PRESET=$1
shift
DATA=builtin
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
    DATA=$1
    shift
fi
PYTHON=${PYTHON:-$(command -v python3)}
if [ -z "$PYTHON" ]; then
    echo "run_standalone_train.sh: error: no python3 on PATH; set PYTHON" >&2
    exit 2
fi
exec "$PYTHON" -m ms_gan train --preset "$PRESET" --data "$DATA" --out "runs/$PRESET" "$@"
