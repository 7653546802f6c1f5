#!/usr/bin/env bash
# Conformance run against real vLLM (kept for existing callers): the same as
#
#   bash .ci/conform-target.sh vllm VERSION [VENV_DIR]      VERSION: 0.9.2, 0.32.0 or 0.33.0
#
# which installs vLLM into its own venv and writes docs/reports/vllm-VERSION.json.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: bash $0 VERSION [VENV_DIR]   (VERSION: 0.9.2, 0.32.0 or 0.33.0)" >&2
    exit 2
fi
exec bash "$(dirname "${BASH_SOURCE[0]}")/conform-target.sh" vllm "$@"
