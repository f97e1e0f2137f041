#!/bin/bash
# Evaluate a checkpoint (or an exported MindIR) with the digit metrics, model-zoo style.
#   bash scripts/run_eval.sh CKPT [DATA] [extra ms-gan eval flags...]
#     CKPT  checkpoint file, run directory, or a .mindir exported by run_export.sh
#     DATA  reference data: builtin (default) or an MNIST folder
#   e.g. bash scripts/run_eval.sh ckpt/dcgan_digits8.ckpt builtin --n 10000 --out metrics.json
# Without --out the report goes next to CKPT, to a name no existing file has: <CKPT without
# its extension>_eval.json (RUN_DIR/eval.json for a run directory), else _eval_2.json, _eval_3.json ...
# The script says which. PYTHON overrides the interpreter.
set -e

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "Usage: bash $0 CKPT [DATA] [ms-gan eval flags: --n N --seed S --classifier PATH --out FILE]"
    echo "  CKPT  checkpoint file, run directory or .mindir"
    echo "  DATA  builtin (default) or an MNIST IDX folder"
    echo "  the report goes to --out, else next to CKPT as <name>_eval.json (never over an existing file)"
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
    *)
        if [ -d "$CKPT" ]; then base="${CKPT%/}/eval"; else base="${CKPT%.*}_eval"; fi
        report="$base.json"
        i=2
        while [ -e "$report" ]; do
            report="${base}_$i.json"
            i=$((i + 1))
        done
        echo "run_eval.sh: the report goes to $report (give --out FILE to choose)"
        OUT=(--out "$report")
        ;;
esac

${PYTHON:-python3} -m ms_gan eval "${SOURCE[@]}" --data "$DATA" "${OUT[@]}" "$@"
