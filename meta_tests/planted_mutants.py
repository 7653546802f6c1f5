"""One planted mutant of the reference per requirement: the bug the requirement forbids.

``PLANTED`` is the one table to edit when requirement IDs change: its key is the ID the
killing assertion must start with. Each mutant is a list of exact text edits of
``reference/loaderspec_reference/utils.py`` (each ``old`` occurs there exactly once) and the
tests (pytest node IDs) that must kill it.
"""

# ruff: noqa: E501  (a table of source-text edits, kept one edit per line)
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "reference" / "loaderspec_reference" / "utils.py"


@dataclass(frozen=True)
class Planted:
    bug: str
    edits: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]

    def apply(self, source: str) -> str:
        for old, new in self.edits:
            count = source.count(old)
            if count != 1:
                raise ValueError(f"planted mutant {self.bug!r}: {old!r} occurs {count} times in utils.py, not once")
            source = source.replace(old, new)
        return source


def _t(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"tests/test_{module}.py::{name}" for name in names)


PM, DT, DL, PW = "param_mapping", "default_dtype", "device_loading", "post_loading"
QC, AR, MI = "quant_config", "architecture", "model_init"

_CPU_RESTORE = "                    cpu_data.copy_(p.data)\n                    p.data = cpu_data\n"
_REUSE = "                    original.copy_(p.data)\n                    p.data = original\n"
_MOVE = "                p.data = original.to(target_device)\n"
_RESTORE_LOOKUP = "            if name in original_device_states:\n                original_device = original_device_states[name]\n                original = originals[name]\n"
_REREGISTER = (
    '                    owner, _, leaf = name.rpartition(".")\n'
    "                    module.get_submodule(owner).register_parameter(leaf, nn.Parameter({data}, requires_grad=p.requires_grad))\n"
)
_AUTO_MAP_LOOP = "for name, module in sorted(auto_map.items(), key=lambda x: x[0])"
_TRANSFORMERS_BRANCH_END = (
    "            architectures[i] = TRANSFORMERS_BACKEND_ARCH\n        if model_config.model_impl == ModelImpl.AUTO:\n"
)
_NEW_STYLE_SCOPE = (
    "check_compile=True, prefix=prefix):\n            return model_class(vllm_config=vllm_config, prefix=prefix)"
)

PLANTED: dict[str, Planted] = {
    # --- param-mapping
    "PM-1": Planted(
        "packed_mapping is copied",
        (
            (
                "        _validate_packed_mapping(self.packed_mapping)\n",
                "        _validate_packed_mapping(self.packed_mapping)\n        self.packed_mapping = dict(self.packed_mapping)\n",
            ),
        ),
        _t(PM, "test_packed_mapping_is_kept_as_given"),
    ),
    "PM-2": Planted(
        "the last sub-name of each entry is left out",
        (("enumerate(sub_params)", "enumerate(sub_params[:-1])"),),
        _t(PM, "test_inverse_holds_exactly_the_sub_names"),
    ),
    "PM-3": Planted(
        "the first occurrence wins",
        (
            (
                "self.inverse_packed_mapping[param_name] = (packed_name, index)",
                "self.inverse_packed_mapping.setdefault(param_name, (packed_name, index))",
            ),
        ),
        _t(PM, "test_inverse_points_at_the_last_occurrence"),
    ),
    "PM-4": Planted(
        "self-contained entries are not skipped",
        (("if len(sub_params) == 1 and sub_params[0] == packed_name:", "if False:"),),
        _t(PM, "test_self_contained_entries_are_skipped"),
    ),
    "PM-5": Planted(
        "a bare endswith (vLLM 0.9.2)",
        (('module_name.endswith("." + key)', "module_name.endswith(key)"),),
        _t(PM, "test_kv_proj_does_not_match_qkv_proj"),
    ),
    "PM-7": Planted(
        "a value of the wrong type is a ValueError",
        (
            (
                '        raise TypeError(\n            f"packed_mapping must be a mapping',
                '        raise ValueError(\n            f"packed_mapping must be a mapping',
            ),
            (
                "        if not isinstance(sub_params, (list, tuple)):\n            raise TypeError(",
                "        if not isinstance(sub_params, (list, tuple)):\n            raise ValueError(",
            ),
        ),
        _t(PM, "test_a_mapping_of_the_wrong_types_is_a_type_error"),
    ),
    "PM-8": Planted(
        "an empty name is a TypeError",
        (
            (
                "        if not packed_name:\n            raise ValueError(",
                "        if not packed_name:\n            raise TypeError(",
            ),
            (
                "            if not sub_name:\n                raise ValueError(",
                "            if not sub_name:\n                raise TypeError(",
            ),
        ),
        _t(PM, "test_an_empty_name_is_a_value_error"),
    ),
    "PM-9": Planted(
        "the errors do not name the offending key or sub-name",
        (
            (
                'raise TypeError(f"packed_mapping key {packed_name!r} is not a str")',
                'raise TypeError("packed_mapping has a key that is not a str")',
            ),
            (
                'raise TypeError(f"packed_mapping[{packed_name!r}] holds {sub_name!r}, which is not a str")',
                'raise TypeError("packed_mapping holds a sub-name that is not a str")',
            ),
            (
                'f"packed_mapping[{packed_name!r}] must be a list of sub-names, "\n                f"got {type(sub_params).__name__}: {sub_params!r}"',
                '"packed_mapping values must be lists of sub-names"',
            ),
        ),
        _t(PM, "test_the_rejection_names_the_offending_part"),
    ),
    "PM-10": Planted(
        "a value that is not a list is wrapped in one before the rejection",
        (
            (
                "        if not isinstance(sub_params, (list, tuple)):\n            raise TypeError(",
                "        if not isinstance(sub_params, (list, tuple)):\n"
                "            packed_mapping[packed_name] = [sub_params]  # type: ignore[index]\n            raise TypeError(",
            ),
        ),
        _t(PM, "test_a_rejected_mapping_is_left_as_it_was"),
    ),
    "PM-11": Planted(
        "a given inverse is copied, not extended",
        (
            (
                "        _validate_packed_mapping(self.packed_mapping)\n",
                "        _validate_packed_mapping(self.packed_mapping)\n        self.inverse_packed_mapping = dict(self.inverse_packed_mapping)\n",
            ),
        ),
        _t(PM, "test_a_given_inverse_is_extended_in_place"),
    ),
    # --- default-dtype
    "DT-1": Planted(
        "the default is not changed",
        (
            (
                "        torch.set_default_dtype(dtype)\n    except",
                "        torch.set_default_dtype(old_dtype)\n    except",
            ),
        ),
        _t(DT, "test_default_is_set_inside_the_block"),
    ),
    "DT-2": Planted(
        "restored only when the body raises",
        (("        yield\n    finally:\n", "        yield\n    except BaseException:\n"),),
        _t(DT, "test_normal_exit_restores_the_default"),
    ),
    "DT-7": Planted(
        "restored only on normal exit (vLLM 0.9.2)",
        (("        yield\n    finally:\n", "        yield\n    except BaseException:\n        raise\n    else:\n"),),
        _t(DT, "test_every_exceptional_exit_restores_the_default"),
    ),
    "DT-8": Planted(
        "the body's exception is replaced by a RuntimeError (after the restore)",
        (
            (
                "        yield\n    finally:\n",
                "        yield\n    except Exception as error:\n        torch.set_default_dtype(old_dtype)\n"
                "        raise RuntimeError(str(error)) from error\n    finally:\n",
            ),
        ),
        _t(DT, "test_the_body_exception_propagates_unchanged"),
    ),
    "DT-4": Planted(
        "restores float32, not the entry default",
        (("    old_dtype = torch.get_default_dtype()\n", "    old_dtype = torch.float32\n"),),
        _t(DT, "test_nested_blocks_restore_their_own_entry_dtype"),
    ),
    "DT-5": Planted(
        "a bad dtype is ignored",
        (
            (
                '        raise TypeError(f"set_default_torch_dtype: {dtype!r} cannot be the default dtype ({error})") from error\n',
                "        pass\n",
            ),
        ),
        _t(DT, "test_non_default_dtype_is_rejected_and_changes_nothing"),
    ),
    "DT-6": Planted(
        "the error does not name the value",
        (('f"set_default_torch_dtype: {dtype!r} cannot be the default dtype ({error})"', '"cannot be the default"'),),
        _t(DT, "test_the_rejection_names_the_value"),
    ),
    # --- device-loading
    "DL-1": Planted(
        "a CPU target yields nothing",
        (("        yield module\n        return\n", "        yield None\n        return\n"),),
        _t(DL, "test_cpu_target_moves_nothing"),
    ),
    "DL-2": Planted(
        "CPU parameters are recorded but not moved",
        ((_MOVE, "                p.data = original\n"),),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-3": Planted(
        "parameters already on the target are sent to the CPU at exit",
        (
            (
                '            if p.device.type == "cpu":\n                original_device = p.device',
                '            if True:\n                original_device = torch.device("cpu")',
            ),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-5": Planted(
        "pinning ignored",
        (("pin_memory=pin_memory,", "pin_memory=False,"),),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-6": Planted(
        "parameters created inside are sent to the CPU",
        (
            (
                "        for name, p in module.named_parameters():\n            if p.device.type",
                "        entry_names = {n for n, _ in module.named_parameters()}\n"
                "        for name, p in module.named_parameters():\n            if p.device.type",
            ),
            (
                _RESTORE_LOOKUP,
                "            if name in original_device_states or name not in entry_names:\n"
                '                original_device = original_device_states.get(name, torch.device("cpu"))\n'
                "                original = originals.get(name, p.data.cpu())\n",
            ),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-7": Planted(
        "a failed move strands the parameters already moved",
        (
            (
                _MOVE,
                "                try:\n                    p.data = original.to(target_device)\n"
                "                except BaseException:\n                    original_device_states.clear()\n"
                "                    raise\n",
            ),
        ),
        _t(DL, "test_failed_move_is_undone"),
    ),
    "DL-8": Planted(
        "the target's type is not checked",
        (("    if not isinstance(target_device, torch.device):\n", "    if False:\n"),),
        _t(DL, "test_target_must_be_a_device"),
    ),
    "DL-9": Planted(
        "the body's exception is swallowed",
        (
            (
                "                    p.data = p.data.to(original_device)\n",
                "                    p.data = p.data.to(original_device)\n        return\n",
            ),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-10": Planted(
        "recorded parameters are never restored",
        ((_RESTORE_LOOKUP, _RESTORE_LOOKUP.replace("if name in original_device_states:", "if False:")),),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-11": Planted(
        "restored data takes the entry dtype, not the one the body left",
        (("                        dtype=p.data.dtype,\n", "                        dtype=original.dtype,\n"),),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-12": Planted(
        "restored storage is never filled",
        (
            (_CPU_RESTORE, "                    p.data = cpu_data\n"),
            (_REUSE, "                    p.data = original\n"),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-13": Planted(
        "the restore registers a new Parameter under the name (a tied one is untied)",
        (
            (_CPU_RESTORE, "                    cpu_data.copy_(p.data)\n" + _REREGISTER.format(data="cpu_data")),
            (_REUSE, "                    original.copy_(p.data)\n" + _REREGISTER.format(data="original")),
        ),
        _t(DL, "test_tied_weights_stay_tied"),
    ),
    "DL-14": Planted(
        "the restore looks every recorded name up (a vanished one raises)",
        (
            (
                "        for name, p in module.named_parameters():\n" + _RESTORE_LOOKUP,
                "        for name in list(original_device_states):\n            p = module.get_parameter(name)\n"
                + _RESTORE_LOOKUP,
            ),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-15": Planted(
        "only the parameter objects seen on entry are restored",
        (
            (
                "    originals: dict[str, torch.Tensor] = {}\n",
                "    originals: dict[str, torch.Tensor] = {}\n    entered = {}\n",
            ),
            (
                "                originals[name] = original\n",
                "                originals[name] = original\n                entered[name] = p\n",
            ),
            (
                "        for name, p in module.named_parameters():\n" + _RESTORE_LOOKUP,
                "        for name, p in module.named_parameters():\n"
                + _RESTORE_LOOKUP.replace(
                    "if name in original_device_states:", "if name in original_device_states and entered[name] is p:"
                ),
            ),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-16": Planted(
        "overlapping data keeps its strides (the copy raises in finally, vLLM 0.9.2)",
        (
            (
                "                        stride=_restorable_stride(p.data),\n",
                "                        stride=p.data.stride(),\n",
            ),
        ),
        _t(DL, "test_overlapping_data_is_restored_and_the_body_error_kept"),
    ),
    "DL-17": Planted(
        "restored data is sparse",
        (
            (
                _CPU_RESTORE,
                "                    cpu_data.copy_(p.data)\n                    try:\n                        sparse = cpu_data.to_sparse()\n"
                "                    except (RuntimeError, NotImplementedError):  # float8 has no sparse kernels\n"
                "                        sparse = cpu_data\n" + _REREGISTER.format(data="sparse"),
            ),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-18": Planted(
        "the restore resets the default device to the CPU",
        (
            (
                "        pin_memory = is_pin_memory_available()\n",
                '        torch.set_default_device("cpu")\n        pin_memory = is_pin_memory_available()\n',
            ),
        ),
        _t(DL, "test_device_state_is_restored"),
    ),
    "DL-19": Planted(
        "the original host storage is reused whether or not its pinning satisfies DL-5",
        (("                    and original.is_pinned() == pin_memory\n", ""),),
        _t(DL, "test_reused_host_storage_holds_the_body_values"),
    ),
    # --- post-loading
    "PW-1": Planted(
        "any quant_method with the hook's name is called",
        (
            (
                "        if isinstance(quant_method, QuantizeMethodBase):",
                '        if hasattr(quant_method, "process_weights_after_loading"):',
            ),
        ),
        _t(PW, "test_each_quantized_module_is_processed_once_in_order"),
    ),
    "PW-2": Planted(
        "a cross-QKV layer's quant_method runs too",
        (
            (
                "            module.process_weights_after_loading()\n            continue\n",
                "            module.process_weights_after_loading()\n",
            ),
        ),
        _t(PW, "test_cross_qkv_layers_run_their_own_hook"),
    ),
    "PW-6": Planted(
        "no device context",
        (("            with device_loading_context(module, target_device):", "            if True:"),),
        _t(PW, "test_quantize_methods_run_inside_the_device_context"),
    ),
    "PW-7": Planted(
        "the module is moved to the target for the hook and left there",
        (
            (
                "            with device_loading_context(module, target_device):\n",
                "            for p in module.parameters():\n                p.data = p.data.to(target_device)\n            if True:\n",
            ),
        ),
        _t(PW, "test_quantize_methods_run_inside_the_device_context"),
    ),
    "PW-8": Planted(
        "the CPU shortcut skips the hook",
        (
            (
                "                quant_method.process_weights_after_loading(module)\n                continue\n",
                "                continue\n",
            ),
        ),
        _t(PW, "test_with_a_cpu_target_hooks_see_parameters_in_place"),
    ),
    "PW-4": Planted(
        "attention hooks get the default dtype",
        (
            (
                "module.process_weights_after_loading(model_config.dtype)",
                "module.process_weights_after_loading(torch.get_default_dtype())",
            ),
        ),
        _t(PW, "test_attention_hooks_run_last_with_the_model_dtype"),
    ),
    "PW-9": Planted(
        "a failing quantize method is ignored on a CPU target",
        (
            (
                "                quant_method.process_weights_after_loading(module)\n                continue\n",
                "                with contextlib.suppress(Exception):\n"
                "                    quant_method.process_weights_after_loading(module)\n                continue\n",
            ),
        ),
        _t(PW, "test_a_hook_exception_propagates_unchanged"),
    ),
    "PW-10": Planted(
        "a failing quantize method on a CPU target is re-raised only after every other hook",
        (
            (
                "    for _, module in model.named_modules():\n        if isinstance(module, QKVCrossParallelLinear):",
                "    deferred = []\n    for _, module in model.named_modules():\n        if isinstance(module, QKVCrossParallelLinear):",
            ),
            (
                "                quant_method.process_weights_after_loading(module)\n                continue\n",
                "                try:\n                    quant_method.process_weights_after_loading(module)\n"
                "                except Exception as error:\n                    deferred.append(error)\n                continue\n",
            ),
            (
                "            module.process_weights_after_loading(model_config.dtype)\n",
                "            module.process_weights_after_loading(model_config.dtype)\n    if deferred:\n        raise deferred[0]\n",
            ),
        ),
        _t(PW, "test_no_hook_runs_after_a_failing_one"),
    ),
    "PW-11": Planted(
        "the device context is left only when the hook succeeds",
        (
            (
                "            with device_loading_context(module, target_device):\n                quant_method.process_weights_after_loading(module)\n",
                "            context = device_loading_context(module, target_device)\n            context.__enter__()\n"
                "            quant_method.process_weights_after_loading(module)\n            context.__exit__(None, None, None)\n",
            ),
        ),
        _t(PW, "test_a_failing_hook_module_is_restored_first"),
    ),
    # --- quant-config
    "QC-1": Planted(
        "the mapper is applied after the mapping is set",
        (
            (
                "        if hf_to_vllm_mapper is not None:\n            quant_config.apply_vllm_mapper(hf_to_vllm_mapper)\n"
                "        if packed_mapping is not None:\n            quant_config.packed_modules_mapping = packed_mapping\n",
                "        if packed_mapping is not None:\n            quant_config.packed_modules_mapping = packed_mapping\n"
                "        if hf_to_vllm_mapper is not None:\n            quant_config.apply_vllm_mapper(hf_to_vllm_mapper)\n",
            ),
        ),
        _t(QC, "test_the_mapper_itself_is_applied_first"),
    ),
    "QC-2": Planted(
        "the mapping is copied",
        (
            (
                "quant_config.packed_modules_mapping = packed_mapping",
                "quant_config.packed_modules_mapping = dict(packed_mapping)",
            ),
        ),
        _t(QC, "test_the_mapping_is_shared_by_reference"),
    ),
    "QC-3": Planted(
        "SupportsQuant classes are wired too",
        (("    if not issubclass(model_class, SupportsQuant):\n", "    if True:\n"),),
        _t(QC, "test_supports_quant_classes_are_left_alone"),
    ),
    "QC-4": Planted(
        "a None mapping is set",
        (("        if packed_mapping is not None:\n", '        if hasattr(model_class, "packed_modules_mapping"):\n'),),
        _t(QC, "test_missing_or_none_attributes_do_nothing"),
    ),
    # --- architecture
    "AR-1": Planted(
        "auto does not fall back to the backend when no name is supported",
        (
            (
                "    if model_config.model_impl == ModelImpl.TRANSFORMERS or (\n        model_config.model_impl != ModelImpl.VLLM and vllm_not_supported\n    ):",
                "    if model_config.model_impl == ModelImpl.TRANSFORMERS:",
            ),
        ),
        _t(AR, "test_decision_table"),
    ),
    "AR-2": Planted(
        "quantized Mixtral keeps its class",
        (('        architectures = ["QuantMixtralForCausalLM"]\n', "        pass\n"),),
        _t(AR, "test_decision_table"),
    ),
    "AR-3": Planted(
        "the registry is asked in reverse order",
        (("ModelRegistry.resolve_model_cls(architectures)", "ModelRegistry.resolve_model_cls(architectures[::-1])"),),
        _t(AR, "test_decision_table"),
    ),
    "AR-4": Planted(
        "embed does not wrap the class",
        (("        model_cls = as_embedding_model(model_cls)\n", "        pass\n"),),
        _t(AR, "test_decision_table"),
    ),
    "AR-5": Planted(
        "get_architecture_class_name gives the first name in the config",
        (("    return get_model_architecture(model_config)[1]\n", "    return _architectures_of(model_config)[0]\n"),),
        _t(AR, "test_the_shorthands_agree"),
    ),
    "AR-6": Planted(
        "the resolved names are written back (vLLM 0.9.2)",
        (
            (
                "        architectures = resolve_transformers_arch(model_config, architectures)\n",
                "        architectures = resolve_transformers_arch(model_config, architectures)\n"
                "        model_config.hf_config.architectures = architectures\n",
            ),
        ),
        _t(AR, "test_resolution_leaves_the_config_alone"),
    ),
    "AR-8": Planted(
        "missing architectures are not checked (vLLM 0.9.2)",
        (
            (
                "    if architectures is None or isinstance(architectures, str) or not architectures:\n",
                "    if False:\n",
            ),
        ),
        _t(AR, "test_missing_architectures_are_rejected"),
    ),
    "AR-9": Planted(
        "the error does not name the model",
        (
            (
                'f"hf_config.architectures of model {model_config.model!r} must be a non-empty "',
                '"hf_config.architectures must be a non-empty "',
            ),
        ),
        _t(AR, "test_the_rejection_names_the_model"),
    ),
    "TF-1": Planted(
        "the backend's own name is resolved like any other",
        (
            (
                "        if arch == TRANSFORMERS_BACKEND_ARCH:\n            continue\n",
                "        if arch == TRANSFORMERS_BACKEND_ARCH:\n            pass\n",
            ),
        ),
        _t(AR, "test_backend_entries_load_nothing_and_stay"),
    ),
    "TF-2": Planted(
        "only the AutoModel entry is loaded",
        ((_AUTO_MAP_LOOP, _AUTO_MAP_LOOP + ' if name == "AutoModel"'),),
        _t(AR, "test_every_auto_map_class_is_loaded_in_key_order"),
    ),
    "TF-3": Planted(
        "the error does not name the architecture",
        (
            (
                "f\"Cannot find model module. '{arch}' is not a registered \"",
                '"Cannot find model module. It is not a registered "',
            ),
        ),
        _t(AR, "test_missing_auto_model_is_an_error_naming_the_arch"),
    ),
    "TF-8": Planted(
        "model_impl transformers does not check compatibility",
        (
            (
                "        if model_config.model_impl == ModelImpl.TRANSFORMERS:\n            if not model_module.is_backend_compatible():",
                "        if model_config.model_impl == ModelImpl.TRANSFORMERS:\n            if False:",
            ),
        ),
        _t(AR, "test_transformers_impl_rejects_an_incompatible_class"),
    ),
    "TF-9": Planted(
        "model_impl transformers keeps the name",
        ((_TRANSFORMERS_BRANCH_END, "        if model_config.model_impl == ModelImpl.AUTO:\n"),),
        _t(AR, "test_a_compatible_class_becomes_the_backend"),
    ),
    "TF-10": Planted(
        "model_impl transformers warns about the fallback",
        (
            (
                _TRANSFORMERS_BRANCH_END,
                '            logger.warning("%s: falling back to the Transformers backend", arch)\n'
                + _TRANSFORMERS_BRANCH_END,
            ),
        ),
        _t(AR, "test_transformers_impl_falls_back_silently"),
    ),
    "TF-11": Planted(
        "the auto error does not name the architecture",
        (
            (
                'f"{arch} has no vLLM implementation and the Transformers "',
                '"This model has no vLLM implementation and the Transformers "',
            ),
        ),
        _t(AR, "test_auto_impl_rejects_an_incompatible_class"),
    ),
    "TF-12": Planted(
        "model_impl auto keeps the name",
        (
            (
                "            architectures[i] = TRANSFORMERS_BACKEND_ARCH\n    return architectures\n",
                "    return architectures\n",
            ),
        ),
        _t(AR, "test_a_compatible_class_becomes_the_backend"),
    ),
    "TF-13": Planted(
        "the fallback is logged below WARNING",
        (
            (
                '            logger.warning(\n                "%s has no vLLM',
                '            logger.info(\n                "%s has no vLLM',
            ),
        ),
        _t(AR, "test_auto_impl_falls_back_with_a_warning"),
    ),
    "TF-6": Planted(
        "model_impl vllm falls back too",
        (
            (
                "        if model_config.model_impl == ModelImpl.AUTO:",
                "        if model_config.model_impl != ModelImpl.TRANSFORMERS:",
            ),
        ),
        _t(AR, "test_native_impl_keeps_every_name"),
    ),
    "TF-7": Planted(
        "the argument is edited in place (vLLM 0.9.2)",
        (("    architectures = list(architectures)\n    for i, arch", "    for i, arch"),),
        _t(AR, "test_the_list_given_is_not_modified"),
    ),
    # --- model-init
    "MI-1": Planted(
        "the model_config given is ignored",
        (
            (
                "    if model_config is None:\n        # vLLM types this field Optional too; a None here fails in get_model_architecture.\n"
                "        model_config = cast(ModelConfig, vllm_config.model_config)\n",
                "    model_config = cast(ModelConfig, vllm_config.model_config)\n",
            ),
        ),
        _t(MI, "test_defaults_come_from_the_vllm_config"),
    ),
    "MI-2": Planted(
        "the quantization config is not wired",
        (("        configure_quant_config(vllm_config.quant_config, model_class)\n", "        pass\n"),),
        _t(MI, "test_quant_config_is_wired_before_construction"),
    ),
    "MI-3": Planted(
        "a new-style class also gets config",
        (
            (
                "return model_class(vllm_config=vllm_config, prefix=prefix)",
                "return model_class(vllm_config=vllm_config, prefix=prefix, config=model_config.hf_config)",
            ),
        ),
        _t(MI, "test_new_style_class_gets_exactly_config_and_prefix"),
    ),
    "MI-7": Planted(
        "cache_config gets the quantization config",
        (
            (
                '    "cache_config": lambda vllm_config, model_config, prefix: vllm_config.cache_config,',
                '    "cache_config": lambda vllm_config, model_config, prefix: vllm_config.quant_config,',
            ),
        ),
        _t(MI, "test_old_style_class_gets_the_arguments_it_names"),
    ),
    "MI-8": Planted(
        "the deprecation is a UserWarning",
        (("warnings.warn(msg, DeprecationWarning, stacklevel=2)", "warnings.warn(msg, UserWarning, stacklevel=2)"),),
        _t(MI, "test_old_style_class_gets_the_arguments_it_names"),
    ),
    "MI-9": Planted(
        "the deprecation points at initialize_model",
        (
            (
                "warnings.warn(msg, DeprecationWarning, stacklevel=2)",
                "warnings.warn(msg, DeprecationWarning, stacklevel=1)",
            ),
        ),
        _t(MI, "test_old_style_class_gets_the_arguments_it_names"),
    ),
    "MI-10": Planted(
        "the old-style class is logged below WARNING",
        (('    logger.warning("Trying to guess', '    logger.info("Trying to guess'),),
        _t(MI, "test_old_style_class_gets_the_arguments_it_names"),
    ),
    "MI-5": Planted(
        "the scope has no prefix",
        ((_NEW_STYLE_SCOPE, _NEW_STYLE_SCOPE.replace("check_compile=True, prefix=prefix", "check_compile=True")),),
        _t(MI, "test_new_style_class_gets_exactly_config_and_prefix"),
    ),
    "MI-11": Planted(
        "nothing is checked before wiring (vLLM 0.9.2)",
        (("    if missing:\n", "    if False:\n"),),
        _t(MI, "test_unsatisfiable_constructor_is_rejected_before_any_change"),
    ),
    "MI-12": Planted(
        "the error does not name the class",
        (
            (
                'f"cannot construct {model_class.__qualname__}: its __init__',
                'f"cannot construct the model class: its __init__',
            ),
        ),
        _t(MI, "test_the_rejection_names_the_class_and_the_parameter"),
    ),
    "MI-13": Planted(
        "positional-only parameters count as keywords",
        (
            (
                "if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)",
                "if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)",
            ),
        ),
        _t(
            MI,
            "test_optional_positional_only_parameters_are_not_passed",
            "test_positional_only_config_keyword_does_not_make_a_class_new_style",
        ),
    ),
}
"""Requirement ID -> the planted mutant an assertion naming that ID must kill."""
