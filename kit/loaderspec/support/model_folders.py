"""Local model folders the suites build for themselves (no hub is ever reached).

A folder holds ``config.json`` and, for custom models, the code its ``auto_map``
names, as a model downloaded with ``trust_remote_code`` would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import LlamaConfig

CUSTOM_ARCH = "LoaderspecCustomForCausalLM"
"""An architecture no registry and no transformers release knows: only its auto_map finds it."""

_CONFIGURATION_CODE = """\
import os

from transformers import PretrainedConfig

if os.environ.get("LOADERSPEC_IMPORT_LOG"):
    with open(os.environ["LOADERSPEC_IMPORT_LOG"], "a") as log:
        log.write("config\\n")


class CustomConfig(PretrainedConfig):
    model_type = "loaderspec_custom"

    def __init__(self, hidden_size=64, vocab_size=128, num_attention_heads=2, num_hidden_layers=1,
                 **kwargs):
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        self.num_attention_heads = num_attention_heads
        self.num_hidden_layers = num_hidden_layers
        super().__init__(**kwargs)
"""

_MODELING_CODE = """\
import os

import torch
from transformers import PreTrainedModel, PretrainedConfig

if os.environ.get("LOADERSPEC_IMPORT_LOG"):
    with open(os.environ["LOADERSPEC_IMPORT_LOG"], "a") as log:
        log.write("model\\n")


class CustomModel(PreTrainedModel):
    config_class = PretrainedConfig
    _supports_attention_backend = {compatible}

    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = torch.nn.Embedding(config.vocab_size, config.hidden_size)
        self.post_init()


class CustomForCausalLM(CustomModel):
    pass
"""


def write_llama_folder(path: Path, architectures: list[str] | None = None, **overrides: Any) -> Path:
    """A tiny Llama (head size 32, as vLLM 0.9.2 needs at least that) in ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = dict(
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_hidden_layers=1,
        vocab_size=128,
        max_position_embeddings=256,
        architectures=["LlamaForCausalLM"] if architectures is None else architectures,
    )
    settings.update(overrides)
    LlamaConfig(**settings).save_pretrained(path)
    return path


def write_custom_code_folder(
    path: Path,
    *,
    architectures: list[str] | None = None,
    backend_compatible: bool = True,
    with_auto_model: bool = True,
    extra_auto_map: dict[str, str] | None = None,
) -> Path:
    """A custom-code model: ``auto_map`` names classes in files inside the folder.

    The configuration and modeling files log their import to
    ``$LOADERSPEC_IMPORT_LOG`` (when set), so the order they load in can be seen.
    """
    path.mkdir(parents=True, exist_ok=True)
    (path / "configuration_custom.py").write_text(_CONFIGURATION_CODE)
    (path / "modeling_custom.py").write_text(_MODELING_CODE.replace("{compatible}", repr(backend_compatible)))
    auto_map = {"AutoConfig": "configuration_custom.CustomConfig"}
    if with_auto_model:
        auto_map["AutoModel"] = "modeling_custom.CustomModel"
        auto_map["AutoModelForCausalLM"] = "modeling_custom.CustomForCausalLM"
    auto_map.update(extra_auto_map or {})
    config = {
        "model_type": "loaderspec_custom",
        "architectures": [CUSTOM_ARCH] if architectures is None else architectures,
        "auto_map": auto_map,
        "hidden_size": 64,
        "vocab_size": 128,
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
        # vLLM's ModelConfig reads these; the custom model ignores them.
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 256,
        "torch_dtype": "float32",
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path
