#!/usr/bin/env bash
# VNN-COMP: install robustprop once.  Usage: install_tool.sh v1
# Creates the repository's .venv with ./scripts/setup (CPU torch, maraboupy, z3, highspy,
# onnxruntime) and checks that `verify` runs. Exit 0 when the tool is ready.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/common.sh"
check_args "$0" 1 "" "$@"
"$ROOT/scripts/setup"
"$ROOT/.venv/bin/verify" --version
