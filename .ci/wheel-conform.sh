#!/usr/bin/env bash
# Proof that no checkout is needed: build the wheel, install it into a fresh venv, and run
# `loaderspec conform` from an empty folder (the suites, their strategies, fixtures and the
# simulated device all come from the wheel).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
python3 -m pip wheel --no-deps --quiet -w "$work/dist" "$repo"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet torch==2.13.0 "$(ls "$work"/dist/loaderspec-*.whl)[test]"
mkdir "$work/empty"
cd "$work/empty"
"$work/venv/bin/loaderspec" conform --json report.json
echo "[wheel-conform] built, installed and ran from an empty folder in $((SECONDS - start)) s"
