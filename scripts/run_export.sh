#!/bin/bash
# Export a trained generator to MindIR (default) or ONNX, model-zoo style.
#   bash scripts/run_export.sh CKPT [FORMAT] [OUT]
#     CKPT    checkpoint file or run directory (its latest checkpoint)
#     FORMAT  MINDIR (default) or ONNX (needs the onnx extra: pip install -e '.[onnx]')
#     OUT     output file (default: generator.mindir / generator.onnx, discriminator.* with NET=d,
#             in the current folder)
# Extra settings through the environment: PYTHON (default python3), NET=g|d (default g), DEVICE (default CPU).
set -e

if [ $# -lt 1 ] || [ $# -gt 3 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "Usage: bash $0 CKPT [FORMAT] [OUT]"
    echo "  CKPT    checkpoint file or run directory"
    echo "  FORMAT  MINDIR (default) or ONNX"
    echo "  OUT     output file (default: generator.mindir or generator.onnx; discriminator.* with NET=d)"
    echo "  env: PYTHON=python3 NET=g|d DEVICE=CPU|GPU|Ascend"
    exit 1
fi

CKPT=$1
FORMAT=$(echo "${2:-MINDIR}" | tr '[:lower:]' '[:upper:]')
if [ "$FORMAT" = "MINDIR" ]; then EXT=mindir; else EXT=onnx; fi
OUT=${3:-generator.$EXT}
if [ "${NET:-g}" = "d" ] && [ -z "$3" ]; then OUT=discriminator.$EXT; fi

${PYTHON:-python3} -m ms_gan export --ckpt "$CKPT" --format "$FORMAT" --out "$OUT" \
    --net "${NET:-g}" --device "${DEVICE:-CPU}"
