#!/usr/bin/env bash
# Conformance run against one target in its own venv: install it, then run
# `loaderspec conform --impl TARGET --profile ci` there with the target's committed
# expected-failure file (kit/loaderspec/adapters/xfails/TARGET-VERSION.toml, picked by the
# adapter), writing the JSON report that `loaderspec matrix` renders into docs/conformance.md.
#
#   bash .ci/conform-target.sh reference [VENV_DIR]
#   bash .ci/conform-target.sh vllm VERSION [VENV_DIR]       VERSION: 0.9.2, 0.10.0, 0.32.0, 0.33.0, 0.34.0
#   bash .ci/conform-target.sh sglang VERSION [VENV_DIR]     VERSION: 0.5.23
#
# Report: $REPORTS_DIR/TARGET-VERSION.json (reference: $REPORTS_DIR/reference.json);
# REPORTS_DIR defaults to docs/reports. VENV_DIR defaults to .venv-TARGET-VERSION in the
# repository (.venv for the reference). Idempotent: an existing venv holding the target is
# reused. With REMOVE_VENV_AFTER=1 (CI sets it) a vLLM or SGLang venv (~3 GB each) is removed
# once its report is written, so a matrix run never holds more than one engine on disk.
# Exit status: that of `loaderspec conform` (0: every failure expected, none passing
# unexpectedly); 2 on bad arguments.
set -euo pipefail
usage="usage: bash $0 reference [VENV_DIR] | vllm VERSION [VENV_DIR] | sglang VERSION [VENV_DIR]"
if [[ $# -lt 1 ]]; then
    echo "$usage" >&2
    exit 2
fi
target=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
reports=${REPORTS_DIR:-$repo/docs/reports}
case "$target" in
    reference)
        version=""
        label=reference
        venv=${2:-$repo/.venv}
        ;;
    vllm | sglang)
        if [[ $# -lt 2 ]]; then
            echo "$usage" >&2
            exit 2
        fi
        version=$2
        label=$target-$version
        venv=${3:-$repo/.venv-$label}
        ;;
    *)
        echo "conform-target.sh: unknown target '$target'; $usage" >&2
        exit 2
        ;;
esac

start=$SECONDS
case "$target" in
    reference)
        [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --disable-pip-version-check -q torch==2.13.0 -e "$repo[test]"
        ;;
    vllm) bash "$repo/.ci/install-vllm.sh" "$version" "$venv" ;;
    sglang) bash "$repo/.ci/install-sglang.sh" "$version" "$venv" ;;
esac
installed=$((SECONDS - start))
echo "[conform-target] $label installed in $installed s"

cd "$repo"
mkdir -p "$reports"
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-$(mktemp -d)}
status=0
# An engine whose own behaviour leaves a requirement unobservable (it raised before the check)
# gets that requirement listed as inconclusive, with what stopped it; the matrix records it
# rather than failing CI on it. The reference must leave nothing inconclusive.
allow=()
[[ "$target" != reference ]] && allow=(--allow-inconclusive)
junit=$(mktemp --suffix=.xml)
"$venv/bin/loaderspec" conform --impl "$target" --profile ci "${allow[@]}" --json "$reports/$label.json" \
    --junit-xml "$junit" || status=$?
# What a user's CI would show: the JUnit file, checked against the schema and the report's counts.
if [[ -f "$reports/$label.json" && -s "$junit" ]]; then
    "$venv/bin/python" "$repo/.ci/check-junit.py" "$reports/$label.json" "$junit" || status=1
fi
rm -f "$junit"
# The report is committed: make its paths independent of where this checkout and venv live.
if [[ -f "$reports/$label.json" ]]; then
    python3 - "$reports/$label.json" "$repo" "$venv" <<'PY'
import re
import sys
from pathlib import Path

report, repo, venv = Path(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3].rstrip("/")
text = report.read_text(encoding="utf-8")
text = text.replace(venv + "/", "$VENV/").replace(repo + "/", "")
# What is left under the same top folders (other venvs, paths Hypothesis shortened with "...").
for root in {"/" + Path(path).parts[1] for path in (repo, venv) if len(Path(path).parts) > 1}:
    text = re.sub(re.escape(root) + r"/[^\s\"'\\]*", "<path>", text)
report.write_text(text, encoding="utf-8")
PY
fi
if [[ "${REMOVE_VENV_AFTER:-0}" == 1 && "$target" != reference ]]; then
    rm -rf "$venv"
    echo "[conform-target] removed $venv (REMOVE_VENV_AFTER=1)"
fi
echo "[conform-target] $label: install $installed s, conformance run $((SECONDS - start - installed)) s," \
    "total $((SECONDS - start)) s, exit status $status"
exit "$status"
