#!/usr/bin/env bash
# Install real SGLang into a venv on the CPU torch, with loaderspec beside it, so the
# conformance suites can run against it (`--impl sglang`).
#
#   bash .ci/install-sglang.sh VERSION VENV_DIR      VERSION: 0.5.23
#
# Idempotent: a VENV_DIR that already holds that SGLang is kept (only loaderspec is
# re-installed from this repo, which takes seconds). The pip cache (~/.cache/pip or
# $PIP_CACHE_DIR) is used when present. torch stays the machine's local 2.13.0 CPU wheel.
#
# Why --no-deps: the sglang 0.5.23 wheel pins torch==2.14.1 (a CUDA build) and a CUDA
# stack (sglang-kernel, flashinfer, tilelang, ...) that cannot install on a CPU-only
# machine. It is installed without dependencies, then the dependencies its model-loader
# imports need (found by importing it until nothing was missing), at the versions its
# METADATA pins where it pins one (transformers, openai, compressed-tensors, tokenizers).
# torchvision, torchaudio and torchcodec are removed: the index's builds are CUDA-linked
# for another torch and break `import sglang` ("operator torchvision::nms does not exist");
# the adapter then serves torchvision as an import shim and says so in every report.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: bash $0 VERSION VENV_DIR   (VERSION: 0.5.23)" >&2
    exit 2
fi
VERSION=$1
VENV_DIR=$2
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=install-sglang
# shellcheck source=lib.sh
source "$REPO/.ci/lib.sh"

case "$VERSION" in
    0.5.23) ;;
    *)
        echo "install-sglang.sh: unsupported SGLang version '$VERSION' (use 0.5.23)" >&2
        exit 2
        ;;
esac

echo "[install-sglang] pip cache: $("$PYTHON" -m pip cache dir 2>/dev/null || echo 'disabled')"
if [[ "$(installed_version sglang)" == "$VERSION" ]]; then
    step "sglang $VERSION already in $VENV_DIR: skipping the SGLang install"
else
    new_venv_with_torch

    step "installing sglang==$VERSION --no-deps"
    "${PIP[@]}" install --no-deps "sglang==$VERSION"

    # What `import sglang.srt.model_loader.loader` and the model registry need, torch kept.
    # triton is no Requires-Dist of sglang (torch 2.14 brings it) but is imported at
    # module level. Beware the unrelated PyPI project `cutlass`: SGLang's optional
    # `cutlass` import is the NVIDIA DSL, not needed here.
    step "installing sglang $VERSION's import dependencies (torch kept)"
    "${PIP[@]}" install torch==2.13.0 \
        transformers==5.19.0 tokenizers==0.23.2 compressed-tensors==0.18.0 openai==2.8.0 \
        apache-tvm-ffi==0.1.11 sentencepiece==0.2.1 \
        orjson msgspec pyzmq IPython aiohttp dill gguf einops partial-json-parser uvicorn fastapi \
        setproctitle numpy requests tqdm psutil pydantic packaging regex pybase64 pillow triton

    remove_vision_packages
    expect_installed sglang "$VERSION"
fi

install_loaderspec sglang
# The adapter imports SGLang's model loader as a conformance run will (through the import
# shim when torchvision cannot load), so a missing import dependency shows up here.
"$VENV_DIR/bin/python" -c "
from loaderspec.adapter import load_adapter
adapter = load_adapter('sglang')
adapter.lookup('device_loading_context')
print('the sglang adapter imports SGLang:', adapter.version())
" 2>&1 | grep -v 'Ignore import error' | tail -n 3
step "done: sglang $VERSION in $VENV_DIR"
