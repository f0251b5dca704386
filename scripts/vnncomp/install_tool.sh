#!/usr/bin/env bash
# VNN-COMP: install robustprop once.  Usage: install_tool.sh v1
# Creates the repository's .venv with ./scripts/setup (CPU torch, maraboupy, z3, highspy,
# onnxruntime) and checks that `verify` runs. Exit 0 when the tool is ready.
set -euo pipefail
VERSION_STRING=v1
if [ "$#" -ne 1 ] || [ "$1" != "$VERSION_STRING" ]; then
    echo "usage: $0 $VERSION_STRING (got: $*)" >&2
    exit 1
fi
ROOT=$(cd "$(dirname "$(realpath "$0")")/../.." && pwd)
"$ROOT/scripts/setup"
"$ROOT/.venv/bin/verify" --version
