#!/usr/bin/env bash
# VNN-COMP: prepare one instance.  Usage: prepare_instance.sh v1 CATEGORY ONNX VNNLIB
# robustprop needs no per-instance preparation (it keeps no state between instances and its
# solver processes end with the run); this checks the arguments, that the files are readable
# and that the installed `verify` runs. Exit 0 when the instance can be run.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/common.sh"
check_args "$0" 4 "CATEGORY ONNX VNNLIB" "$@"
CATEGORY=$2
ONNX_FILE=$3
VNNLIB_FILE=$4
echo "robustprop: preparing category '$CATEGORY', onnx '$ONNX_FILE', vnnlib '$VNNLIB_FILE'"
for f in "$ONNX_FILE" "$VNNLIB_FILE"; do
    if [ ! -r "$f" ]; then
        echo "robustprop: cannot read $f" >&2
        exit 1
    fi
done
if [ ! -x "$VERIFY" ]; then
    echo "robustprop: $VERIFY not found; run install_tool.sh v1 first" >&2
    exit 1
fi
