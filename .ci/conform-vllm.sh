#!/usr/bin/env bash
# Conformance run against real vLLM: install it (CPU build) into its own venv, then run
# `loaderspec conform --impl vllm` there with the committed expected-failure file of
# that release (kit/loaderspec/adapters/xfails/vllm-VERSION.toml, picked by the adapter).
#
#   bash .ci/conform-vllm.sh VERSION [VENV_DIR]      VERSION: 0.9.2 or 0.32.0
#
# Exit status: that of `loaderspec conform` (0: every failure expected, none passing
# unexpectedly). The JSON report is written to conform-vllm-VERSION.json.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: bash $0 VERSION [VENV_DIR]   (VERSION: 0.9.2 or 0.32.0)" >&2
    exit 2
fi
version=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${2:-$repo/.venv-vllm-$version}
start=$SECONDS
bash "$repo/.ci/install-vllm.sh" "$version" "$venv"
echo "[conform-vllm] vLLM $version installed in $((SECONDS - start)) s"
cd "$repo"
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-$(mktemp -d)}
"$venv/bin/loaderspec" conform --impl vllm --profile ci --json "conform-vllm-$version.json"
echo "[conform-vllm] vLLM $version: install + conformance run took $((SECONDS - start)) s"
