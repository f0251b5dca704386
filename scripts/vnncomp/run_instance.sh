#!/usr/bin/env bash
# VNN-COMP: decide one instance.
# Usage: run_instance.sh v1 CATEGORY ONNX VNNLIB RESULTS_FILE TIMEOUT
# Writes RESULTS_FILE (atomically): sat / unsat / timeout / unknown / error, then the
# counterexample after sat. Exit 0 whenever a result was reached; 2 (bad input) or 3
# (internal error) after writing "error". ONNX and VNNLIB may be gzip-compressed.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/common.sh"
check_args "$0" 6 "CATEGORY ONNX VNNLIB RESULTS_FILE TIMEOUT" "$@"
CATEGORY=$2
ONNX_FILE=$3
VNNLIB_FILE=$4
RESULTS_FILE=$5
TIMEOUT=$6
echo "robustprop: category '$CATEGORY', onnx '$ONNX_FILE', vnnlib '$VNNLIB_FILE'," \
    "results '$RESULTS_FILE', timeout $TIMEOUT s"
# one thread per library: the competition's machine is measured per instance, and the
# falsifier and bounds set their own thread counts
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$VERIFY" vnnlib --net "$ONNX_FILE" --spec "$VNNLIB_FILE" --timeout "$TIMEOUT" \
    --results-file "$RESULTS_FILE"
