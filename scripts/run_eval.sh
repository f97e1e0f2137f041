#!/bin/bash
# Evaluate a checkpoint (or an exported MindIR) with the digit metrics, model-zoo style.
#   bash scripts/run_eval.sh CKPT [DATA] [extra ms-gan eval flags...]
#     CKPT  checkpoint file, run directory, or a .mindir exported by run_export.sh
#     DATA  reference data: builtin (default) or an MNIST folder
#   e.g. bash scripts/run_eval.sh ckpt/dcgan_digits8.ckpt builtin --n 10000 --out metrics.json
# The report goes to metrics.json unless --out is given. PYTHON overrides the interpreter.
set -e

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "Usage: bash $0 CKPT [DATA] [ms-gan eval flags: --n N --seed S --classifier PATH --out FILE]"
    echo "  CKPT  checkpoint file, run directory or .mindir"
    echo "  DATA  builtin (default) or an MNIST IDX folder"
    exit 1
fi

CKPT=$1
shift
DATA=builtin
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    DATA=$1
    shift
fi
case "$CKPT" in
    *.mindir|*.MINDIR) SOURCE=(--mindir "$CKPT") ;;
    *) SOURCE=(--ckpt "$CKPT") ;;
esac
OUT=()
case " $* " in
    *" --out "*|*" --out="*) ;;
    *) OUT=(--out metrics.json) ;;
esac

${PYTHON:-python3} -m ms_gan eval "${SOURCE[@]}" --data "$DATA" "${OUT[@]}" "$@"
