#!/usr/bin/env bash
# Sourced by the VNN-COMP scripts beside it (not run on its own): the version string, the
# repository root, the `verify` to run, and the argument check they share.
VERSION_STRING=v1
ROOT=$(cd "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../.." && pwd)
VERIFY=${ROBUSTPROP_VERIFY:-$ROOT/.venv/bin/verify}

# check_args SCRIPT COUNT WORDS ARG...: exit 1 with the usage line on stderr unless there are
# COUNT arguments and the first is $VERSION_STRING. WORDS: the usage after the version.
check_args() {
    local script=$1 count=$2 words=$3
    shift 3
    if [ "$#" -ne "$count" ] || [ "$1" != "$VERSION_STRING" ]; then
        echo "usage: $script $VERSION_STRING${words:+ $words} (got: $*)" >&2
        exit 1
    fi
}
