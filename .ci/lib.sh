#!/usr/bin/env bash
# Shared by .ci/install-vllm.sh and .ci/install-sglang.sh (sourced, not run): how an engine
# venv is made beside the machine's local torch 2.13.0 CPU wheel, and loaderspec put into it.
# The caller sets TAG (the log prefix), VENV_DIR and REPO before sourcing.

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
PIP=("$VENV_DIR/bin/python" -m pip --disable-pip-version-check)
T0=$SECONDS
step_start=$SECONDS

step() { # step WHAT: print how long the previous step took, then announce WHAT
    echo "[$TAG] $(date +%H:%M:%S) +$((SECONDS - step_start))s (total $((SECONDS - T0))s): $*"
    step_start=$SECONDS
}

installed_version() { # installed_version DIST: its version in VENV_DIR, or nothing
    [[ -x "$VENV_DIR/bin/python" ]] || return 0
    "$VENV_DIR/bin/python" - "$1" <<'PY' 2>/dev/null || true
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass
PY
}

new_venv_with_torch() { # a fresh VENV_DIR holding torch 2.13.0 (the local CPU wheel)
    step "creating venv $VENV_DIR ($("$PYTHON" --version))"
    rm -rf "$VENV_DIR"
    "$PYTHON" -m venv "$VENV_DIR"
    # torch first, pinned: anything unpinned would pull a multi-GB CUDA build.
    step "installing torch==2.13.0"
    "${PIP[@]}" install torch==2.13.0
}

remove_vision_packages() {
    # PyPI's torchvision/torchaudio/torchcodec are CUDA-linked builds of another torch:
    # beside the local torch they break the engine's import ("operator torchvision::nms does
    # not exist"). The model-loader code does not need them.
    step "removing torchvision/torchaudio/torchcodec if pulled in"
    "${PIP[@]}" uninstall -y torchvision torchaudio torchcodec 2>&1 | grep -v "not installed" || true
}

expect_installed() { # expect_installed DIST VERSION: fail unless VENV_DIR holds it
    local got
    got=$(installed_version "$1")
    if [[ "$got" != "$2" ]]; then
        echo "$TAG: expected $1 $2 in $VENV_DIR, found '${got:-none}'" >&2
        exit 1
    fi
}

install_loaderspec() { # install_loaderspec DIST: loaderspec[test] from REPO, then a check
    # Editable, so the venv follows the working tree; re-done on every run because CI clones
    # the repo into a fresh folder. torch is pinned in the same command so pip cannot swap it.
    step "installing loaderspec[test] (editable) from $REPO"
    "${PIP[@]}" install torch==2.13.0 -e "${REPO}[test]"
    step "checking the install"
    "$VENV_DIR/bin/python" - "$1" <<'PY'
import sys
from importlib.metadata import version

import torch

print(f"{sys.argv[1]} {version(sys.argv[1])}, torch {torch.__version__}, transformers {version('transformers')}, "
      f"loaderspec {version('loaderspec')}")
assert torch.__version__.startswith("2.13.0"), torch.__version__
PY
}
