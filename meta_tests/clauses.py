"""The clause table: every checkable clause of a requirement, the assertion that checks it, and
a planted mutant of the reference that violates that clause (and, as far as one edit can, no
other).

A requirement often holds several conditions: an input domain ("a floating ``torch.dtype``
that torch can make the default"), a quantifier ("exactly once", "any ``Exception``"), a
qualifier ("the **last** occurrence", "(or tuple)"), a condition ("when the body finishes
normally", "is not ``None``"). A suite can pass a requirement's planted mutant
(``planted_mutants.PLANTED``) and still miss the wrong reading of one of its clauses, so each
clause here has its own mutant, killed by an assertion that names the clause's requirement
(``meta_tests/test_clauses.py``). ``python tools/clauses.py`` renders the table as
``docs/clauses.md``.

To add a chapter: append its clauses to ``CLAUSES`` (IDs ``<REQ>.<letter>``, in the order of
the spec's sentences), quote each clause's text exactly as the requirement's section has it
(whitespace may differ: line breaks are normalised), and add the chapter to ``CHAPTERS_DONE``.
Where a requirement's ``PLANTED`` mutant is exactly a clause's violation, give its key
(``mutant="DT-1"``) instead of a copy; the clause's own ``tests`` are what run against it.
"""

# ruff: noqa: E501  (a table of source-text edits, kept one edit per line)
from __future__ import annotations

from dataclasses import dataclass

from .planted_mutants import PLANTED, Planted

KINDS = ("quantifier", "qualifier", "condition", "plain")
"""What a clause is: a quantifier ("every", "exactly once", "any ..."), a qualifier that narrows
a term ("the **last**", "(or tuple)", "the very object"), a condition ("when ...", "is not
``None``"), or a plain statement."""

CHAPTERS_DONE = ("default-dtype", "quant-config", "param-mapping", "post-loading")
"""Chapters whose every MUST and SHOULD requirement is split into clauses here."""

CHAPTERS_PENDING = ("device-loading", "architecture", "model-init")
"""Chapters not yet split (their requirements have only their ``PLANTED`` mutant)."""


@dataclass(frozen=True)
class Clause:
    id: str
    """``<requirement>.<letter>``, e.g. ``DT-1.a``."""
    kind: str
    """One of ``KINDS``."""
    text: str
    """The clause, quoted from the requirement's section of ``spec/<chapter>.md``."""
    tests: tuple[str, ...]
    """The pytest node IDs whose assertion checks the clause (and that must kill the mutant)."""
    assertion: str
    """The start of that assertion's message (a literal part of the test's source)."""
    mutant: Planted | str
    """The clause's violation: a planted mutant, or the key of the ``PLANTED`` one that is it."""

    @property
    def requirement(self) -> str:
        return self.id.rsplit(".", 1)[0]

    @property
    def planted(self) -> Planted:
        """The mutant, run against this clause's own tests."""
        if isinstance(self.mutant, str):
            shared = PLANTED[self.mutant]
            return Planted(shared.bug, shared.edits, self.tests)
        return self.mutant

    @property
    def shares_planted(self) -> bool:
        return isinstance(self.mutant, str)


def _t(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"tests/test_{module}.py::{name}" for name in names)


def clause(
    clause_id: str,
    kind: str,
    text: str,
    tests: tuple[str, ...],
    assertion: str,
    mutant: str | tuple[str, tuple[tuple[str, str], ...]],
) -> Clause:
    """A clause; ``mutant`` is a ``PLANTED`` key or ``(bug, edits)``, run against ``tests``."""
    planted = mutant if isinstance(mutant, str) else Planted(mutant[0], mutant[1], tests)
    return Clause(clause_id, kind, text, tests, assertion, planted)


DT, QC, PM, PW = "default_dtype", "quant_config", "param_mapping", "post_loading"

# --- source fragments of utils.py that several mutants edit ----------------------------------
_SET = "        torch.set_default_dtype(dtype)\n    except"
_OLD = "    old_dtype = torch.get_default_dtype()\n"
_YIELD = "        yield\n    finally:\n"
_REJECT = (
    '        raise TypeError(f"set_default_torch_dtype: {dtype!r} cannot be the default dtype ({error})") from error\n'
)
_DEF_DT = "def set_default_torch_dtype(dtype: torch.dtype) -> Iterator[None]:"
_AFTER_DT = "\n\ndef _validate_packed_mapping("
_RESTORE_ELSE = "        torch.set_default_dtype(old_dtype)\n        raise\n    else:\n"
"""With ``_YIELD`` replaced by ``yield; except X: restore; raise; else:``, the original
``finally`` body becomes the ``else`` body: restored on normal exit and for ``X`` only."""

_QC_IF = "    if not issubclass(model_class, SupportsQuant):\n"
_QC_MAPPER = '        hf_to_vllm_mapper = getattr(model_class, "hf_to_vllm_mapper", None)\n'
_QC_MAPPING = '        packed_mapping = getattr(model_class, "packed_modules_mapping", None)\n'
_QC_APPLY = "            quant_config.apply_vllm_mapper(hf_to_vllm_mapper)\n"

_PM_INVERT = "                self.inverse_packed_mapping[param_name] = (packed_name, index)\n"
_PM_VALIDATE = "        _validate_packed_mapping(self.packed_mapping)\n"
_PM_LOOP = "            for index, param_name in enumerate(sub_params):\n"
_PM_NAMES = '            if module_name == key or module_name.endswith("." + key):'

_PW_FIRST = "    for _, module in model.named_modules():\n        if isinstance(module, QKVCrossParallelLinear):"
_PW_SECOND = '    for _, module in model.named_modules():\n        if isinstance(module, Attention) and hasattr(module, "process_weights_after_loading"):'
_PW_ATTENTION_IF = '        if isinstance(module, Attention) and hasattr(module, "process_weights_after_loading"):'
_PW_QKV = "            module.process_weights_after_loading()\n            continue\n"
_PW_CPU_HOOK = "                quant_method.process_weights_after_loading(module)\n                continue\n"
_PW_CONTEXT = "            with device_loading_context(module, target_device):\n                quant_method.process_weights_after_loading(module)\n"
_PW_ATTENTION_HOOK = "            module.process_weights_after_loading(model_config.dtype)\n"
_PW_BETWEEN = "    # Currently only used by MLA.\n"

_DT_TESTS = {
    "DT-1": _t(DT, "test_default_is_set_inside_the_block"),
    "DT-2": _t(DT, "test_normal_exit_restores_the_default"),
    "DT-4": _t(DT, "test_nested_blocks_restore_their_own_entry_dtype"),
    "DT-5": _t(DT, "test_non_default_dtype_is_rejected_and_changes_nothing"),
    "DT-6": _t(DT, "test_the_rejection_names_the_value"),
    "DT-7": _t(DT, "test_every_exceptional_exit_restores_the_default"),
    "DT-8": _t(DT, "test_the_body_exception_propagates_unchanged"),
}

CLAUSES: tuple[Clause, ...] = (
    # --- default-dtype -----------------------------------------------------------------------
    clause(
        "DT-1.a",
        "qualifier",
        "a floating `torch.dtype` that torch can make the default (`float16`, `bfloat16`, `float32`, `float64`)",
        _DT_TESTS["DT-1"],
        "DT-1: inside the block the default was",
        (
            "bfloat16 is set as float16",
            (
                (
                    _SET,
                    "        torch.set_default_dtype(torch.float16 if dtype == torch.bfloat16 else dtype)\n    except",
                ),
            ),
        ),
    ),
    clause(
        "DT-1.b",
        "plain",
        "inside the block `torch.get_default_dtype() == dtype`",
        _DT_TESTS["DT-1"],
        "DT-1: inside the block the default was",
        "DT-1",
    ),
    clause(
        "DT-1.c",
        "plain",
        "The block's `as` target is `None`.",
        _t(DT, "test_the_block_target_is_none"),
        "DT-1: the block's `as` target is",
        ("the block yields the dtype", ((_YIELD, "        yield dtype\n    finally:\n"),)),
    ),
    clause(
        "DT-2.a",
        "condition",
        "when the body finishes normally",
        _DT_TESTS["DT-2"],
        "DT-2: after the body returned, the default is",
        "DT-2",
    ),
    clause(
        "DT-2.b",
        "qualifier",
        "the one that was the default when the block was entered",
        _t(DT, "test_the_default_restored_is_the_one_at_entry_not_at_call"),
        "DT-2: the block was entered with",
        (
            "the default to restore is taken when set_default_torch_dtype() is called, not when its block is entered",
            (
                (
                    _DEF_DT,
                    "def _set_default_torch_dtype(dtype: torch.dtype, old_dtype: torch.dtype) -> Iterator[None]:",
                ),
                (
                    _OLD + "    try:\n        torch.set_default_dtype(dtype)",
                    "    try:\n        torch.set_default_dtype(dtype)",
                ),
                (
                    _AFTER_DT,
                    "\n\ndef set_default_torch_dtype(dtype):\n    return _set_default_torch_dtype(dtype, torch.get_default_dtype())\n"
                    + _AFTER_DT,
                ),
            ),
        ),
    ),
    clause(
        "DT-4.a",
        "quantifier",
        "each block, however it exits, restores the default that was current when *it* was entered",
        _DT_TESTS["DT-4"],
        "DT-4: level",
        (
            "every block restores the outermost block's entry default",
            (
                (
                    "    try:\n" + _YIELD,
                    "    old_dtype = _ENTRY[0] if _ENTRY else old_dtype\n    _ENTRY.append(old_dtype)\n    try:\n"
                    "        yield\n    finally:\n        _ENTRY.pop()\n",
                ),
                (_AFTER_DT, "\n\n_ENTRY: list[torch.dtype] = []\n" + _AFTER_DT),
            ),
        ),
    ),
    clause(
        "DT-4.b",
        "plain",
        "nested blocks unwind to the outermost block's entry dtype",
        _DT_TESTS["DT-4"],
        "DT-4: ",
        "DT-4",
    ),
    clause(
        "DT-5.a",
        "qualifier",
        "a non-floating dtype (ints, `bool`, complex)",
        _DT_TESTS["DT-5"],
        "DT-5: set_default_torch_dtype(",
        (
            "a complex dtype is taken as its real counterpart",
            (
                (
                    _OLD,
                    _OLD
                    + "    if isinstance(dtype, torch.dtype) and dtype.is_complex:\n        dtype = dtype.to_real()\n",
                ),
            ),
        ),
    ),
    clause(
        "DT-5.b",
        "qualifier",
        "a floating dtype without a default storage (`float8_*`, `float4_*`)",
        _DT_TESTS["DT-5"],
        "DT-5: set_default_torch_dtype(",
        (
            "a float4 dtype is taken as bfloat16",
            (
                (
                    _OLD,
                    _OLD
                    + '    if isinstance(dtype, torch.dtype) and str(dtype).startswith("torch.float4"):\n        dtype = torch.bfloat16\n',
                ),
            ),
        ),
    ),
    clause(
        "DT-5.c",
        "qualifier",
        'no `torch.dtype` at all (`"float16"`, `None`, `float`)',
        _DT_TESTS["DT-5"],
        "DT-5: set_default_torch_dtype(",
        (
            "a dtype's name is accepted",
            ((_OLD, _OLD + "    if isinstance(dtype, str):\n        dtype = getattr(torch, dtype)\n"),),
        ),
    ),
    clause(
        "DT-5.d",
        "plain",
        "raises `TypeError`",
        _DT_TESTS["DT-5"],
        "DT-5: set_default_torch_dtype(",
        ("the rejection is a ValueError", ((_REJECT, _REJECT.replace("raise TypeError(", "raise ValueError(")),)),
    ),
    clause(
        "DT-5.e",
        "condition",
        "when the block is entered",
        _t(DT, "test_a_bad_dtype_is_rejected_on_entry_not_on_call"),
        "DT-5: set_default_torch_dtype(",
        (
            "a bad dtype is rejected when set_default_torch_dtype() is called, before any block is entered",
            (
                (_DEF_DT, "def _set_default_torch_dtype(dtype: torch.dtype) -> Iterator[None]:"),
                (
                    _AFTER_DT,
                    "\n\ndef set_default_torch_dtype(dtype):\n"
                    "    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point and dtype.itemsize >= 2):\n"
                    '        raise TypeError(f"set_default_torch_dtype: {dtype!r} cannot be the default dtype")\n'
                    "    return _set_default_torch_dtype(dtype)\n" + _AFTER_DT,
                ),
            ),
        ),
    ),
    clause(
        "DT-5.f",
        "plain",
        "the body does not run",
        _DT_TESTS["DT-5"],
        "DT-5: the body ran with",
        ("the body runs, then the TypeError is raised", ((_REJECT, "        yield\n" + _REJECT),)),
    ),
    clause(
        "DT-5.g",
        "plain",
        "the default dtype is unchanged",
        _DT_TESTS["DT-5"],
        "DT-5: rejecting",
        (
            "a rejection resets the default to float32",
            (
                (
                    "    except TypeError as error:\n",
                    "    except TypeError as error:\n        torch.set_default_dtype(torch.float32)\n",
                ),
            ),
        ),
    ),
    clause(
        "DT-6.a",
        "plain",
        "The `TypeError` of DT-5 should contain the rejected value",
        _DT_TESTS["DT-6"],
        "DT-6: the error does not name",
        "DT-6",
    ),
    clause(
        "DT-6.b",
        "qualifier",
        "(`torch.int8`, `'float16'`)",
        _t(DT, "test_the_rejection_names_the_value_by_its_repr"),
        "DT-6: the error does not name",
        (
            "the value is named by str(), not repr() ('float16' as float16)",
            (("{dtype!r} cannot be the default dtype ({error})", "{dtype} cannot be the default dtype ({error})"),),
        ),
    ),
    clause(
        "DT-7.a",
        "quantifier",
        "any `Exception`",
        _DT_TESTS["DT-7"],
        "DT-7: after a body that left by",
        (
            "an Exception does not restore",
            (
                (
                    _YIELD,
                    "        yield\n    except Exception:\n        raise\n    except BaseException:\n" + _RESTORE_ELSE,
                ),
            ),
        ),
    ),
    clause(
        "DT-7.b",
        "quantifier",
        "`KeyboardInterrupt`",
        _DT_TESTS["DT-7"],
        "DT-7: after a body that left by",
        (
            "a KeyboardInterrupt does not restore",
            (
                (
                    _YIELD,
                    "        yield\n    except KeyboardInterrupt:\n        raise\n    except BaseException:\n"
                    + _RESTORE_ELSE,
                ),
            ),
        ),
    ),
    clause(
        "DT-7.c",
        "quantifier",
        "or another `BaseException`",
        _t(DT, "test_other_base_exceptions_restore_the_default"),
        "DT-7: after a body that raised",
        (
            "only Exception, KeyboardInterrupt and GeneratorExit restore (SystemExit does not)",
            ((_YIELD, "        yield\n    except (Exception, KeyboardInterrupt, GeneratorExit):\n" + _RESTORE_ELSE),),
        ),
    ),
    clause(
        "DT-7.d",
        "quantifier",
        "`GeneratorExit` because a generator holding the block was closed early",
        _DT_TESTS["DT-7"],
        "DT-7: after a body that left by",
        (
            "a closed generator does not restore",
            (
                (
                    _YIELD,
                    "        yield\n    except GeneratorExit:\n        raise\n    except BaseException:\n"
                    + _RESTORE_ELSE,
                ),
            ),
        ),
    ),
    clause(
        "DT-7.e",
        "condition",
        "the default dtype is restored before the exception leaves the block",
        _DT_TESTS["DT-7"],
        "DT-7: after a body that left by",
        (
            "after an exception the default is restored late, when the next block is entered",
            (
                (
                    _YIELD,
                    "        yield\n    except BaseException:\n        _PENDING.append(old_dtype)\n        raise\n    else:\n",
                ),
                (_OLD, "    if _PENDING:\n        torch.set_default_dtype(_PENDING.pop())\n" + _OLD),
                (_AFTER_DT, "\n\n_PENDING: list[torch.dtype] = []\n" + _AFTER_DT),
            ),
        ),
    ),
    clause(
        "DT-8.a",
        "qualifier",
        "the exception the body raised leaves the block as the same object",
        _DT_TESTS["DT-8"],
        "DT-8: the body raised",
        (
            "an Exception is re-raised as a copy of itself",
            (
                (
                    _YIELD,
                    '        yield\n    except Exception as error:\n        raise __import__("copy").copy(error) from None\n    finally:\n',
                ),
            ),
        ),
    ),
    clause(
        "DT-8.b",
        "quantifier",
        "nothing is swallowed",
        _DT_TESTS["DT-8"],
        "DT-8: the body left by",
        (
            "a KeyboardInterrupt is swallowed",
            ((_YIELD, "        yield\n    except KeyboardInterrupt:\n        pass\n    finally:\n"),),
        ),
    ),
    clause(
        "DT-8.c",
        "plain",
        "wrapped",
        _DT_TESTS["DT-8"],
        "DT-8: the body raised",
        "DT-8",
    ),
    clause(
        "DT-8.d",
        "plain",
        "or replaced",
        _DT_TESTS["DT-8"],
        "DT-8: the body raised",
        (
            "an Exception is replaced by another one",
            (
                (
                    _YIELD,
                    '        yield\n    except Exception:\n        raise RuntimeError("the body failed") from None\n    finally:\n',
                ),
            ),
        ),
    ),
    # --- quant-config ------------------------------------------------------------------------
    clause(
        "QC-1.a",
        "qualifier",
        "whose attribute `hf_to_vllm_mapper` is not `None`",
        _t(QC, "test_an_inherited_mapper_is_applied"),
        "QC-1: expected one",
        (
            "only the class's own attribute counts (an inherited mapper is ignored)",
            ((_QC_MAPPER, '        hf_to_vllm_mapper = vars(model_class).get("hf_to_vllm_mapper")\n'),),
        ),
    ),
    clause(
        "QC-1.b",
        "condition",
        "`hf_to_vllm_mapper` is not `None`",
        _t(QC, "test_a_falsy_mapper_is_applied"),
        "QC-1: expected one",
        (
            "a mapper is applied only when it is truthy",
            (("        if hf_to_vllm_mapper is not None:\n", "        if hf_to_vllm_mapper:\n"),),
        ),
    ),
    clause(
        "QC-1.c",
        "quantifier",
        "is called exactly once",
        _t(QC, "test_the_mapper_itself_is_applied_first"),
        "QC-1: expected one",
        ("the mapper is applied twice", ((_QC_APPLY, _QC_APPLY + _QC_APPLY),)),
    ),
    clause(
        "QC-1.d",
        "qualifier",
        "with that very object",
        _t(QC, "test_the_mapper_itself_is_applied_first"),
        "QC-1: ",
        (
            "a copy of the mapper is applied",
            ((_QC_APPLY, '            quant_config.apply_vllm_mapper(__import__("copy").copy(hf_to_vllm_mapper))\n'),),
        ),
    ),
    clause(
        "QC-1.e",
        "condition",
        "before `packed_modules_mapping` is assigned (QC-2)",
        _t(QC, "test_the_mapper_itself_is_applied_first"),
        "QC-1: the mapper was applied after the mapping was set",
        "QC-1",
    ),
    clause(
        "QC-2.a",
        "qualifier",
        "whose attribute `packed_modules_mapping` is not `None`",
        _t(QC, "test_an_inherited_mapping_is_shared"),
        "QC-2: the config holds",
        (
            "only the class's own attribute counts (an inherited mapping is ignored)",
            ((_QC_MAPPING, '        packed_mapping = vars(model_class).get("packed_modules_mapping")\n'),),
        ),
    ),
    clause(
        "QC-2.b",
        "condition",
        "`packed_modules_mapping` is not `None`",
        _t(QC, "test_an_empty_mapping_is_shared_by_reference"),
        "QC-2: the config holds",
        (
            "a mapping is shared only when it is non-empty",
            (("        if packed_mapping is not None:\n", "        if packed_mapping:\n"),),
        ),
    ),
    clause(
        "QC-2.c",
        "plain",
        "afterwards `quant_config.packed_modules_mapping is model_class.packed_modules_mapping` (the class's own dict, not a copy)",
        _t(QC, "test_the_mapping_is_shared_by_reference", "test_later_updates_to_the_class_mapping_reach_the_config"),
        "QC-2: the config holds",
        "QC-2",
    ),
    clause(
        "QC-3.a",
        "qualifier",
        "a subclass of `SupportsQuant`",
        _t(QC, "test_indirect_supports_quant_subclasses_are_left_alone"),
        "QC-3: a class deriving from SupportsQuant through",
        (
            "only direct subclasses of SupportsQuant are left alone",
            ((_QC_IF, "    if SupportsQuant not in model_class.__bases__:\n"),),
        ),
    ),
    clause(
        "QC-3.b",
        "quantifier",
        "Side effects: none",
        _t(QC, "test_supports_quant_classes_are_left_alone"),
        "QC-3: ",
        "QC-3",
    ),
    clause(
        "QC-3.c",
        "plain",
        "`apply_vllm_mapper` is not called",
        _t(QC, "test_supports_quant_classes_are_left_alone"),
        "QC-3: ",
        (
            "a SupportsQuant class's mapper is applied (its mapping is left alone)",
            (
                (
                    _QC_IF,
                    '    if issubclass(model_class, SupportsQuant) and getattr(model_class, "hf_to_vllm_mapper", None) is not None:\n'
                    "        quant_config.apply_vllm_mapper(model_class.hf_to_vllm_mapper)\n" + _QC_IF,
                ),
            ),
        ),
    ),
    clause(
        "QC-3.d",
        "plain",
        "`quant_config.packed_modules_mapping` is neither replaced",
        _t(QC, "test_supports_quant_classes_are_left_alone"),
        "QC-3: the mapping was replaced",
        (
            "a SupportsQuant class's mapping replaces the config's (its mapper is not applied)",
            (
                (
                    _QC_IF,
                    '    if issubclass(model_class, SupportsQuant) and getattr(model_class, "packed_modules_mapping", None) is not None:\n'
                    "        quant_config.packed_modules_mapping = model_class.packed_modules_mapping\n" + _QC_IF,
                ),
            ),
        ),
    ),
    clause(
        "QC-3.e",
        "plain",
        "nor modified",
        _t(QC, "test_supports_quant_classes_are_left_alone"),
        "QC-3: the mapping was changed",
        (
            "a SupportsQuant class's mapping is merged into the config's own",
            (
                (
                    _QC_IF,
                    "    if issubclass(model_class, SupportsQuant):\n"
                    '        quant_config.packed_modules_mapping.update(getattr(model_class, "packed_modules_mapping", None) or {})\n'
                    + _QC_IF,
                ),
            ),
        ),
    ),
    clause(
        "QC-4.a",
        "condition",
        "when `hf_to_vllm_mapper` is absent",
        _t(QC, "test_missing_or_none_attributes_do_nothing"),
        "QC-4: ",
        (
            "an absent mapper is taken as an empty one, and applied",
            ((_QC_MAPPER, '        hf_to_vllm_mapper = getattr(model_class, "hf_to_vllm_mapper", ())\n'),),
        ),
    ),
    clause(
        "QC-4.b",
        "condition",
        "or `None`, `apply_vllm_mapper` is not called",
        _t(QC, "test_missing_or_none_attributes_do_nothing"),
        "QC-4: ",
        (
            "a None mapper is applied",
            (
                (
                    "        if hf_to_vllm_mapper is not None:\n",
                    '        if hasattr(model_class, "hf_to_vllm_mapper"):\n',
                ),
            ),
        ),
    ),
    clause(
        "QC-4.c",
        "condition",
        "when `packed_modules_mapping` is absent",
        _t(QC, "test_missing_or_none_attributes_do_nothing"),
        "QC-4: the mapping was replaced",
        (
            "an absent mapping is taken as a new empty one, and set",
            ((_QC_MAPPING, '        packed_mapping = getattr(model_class, "packed_modules_mapping", {})\n'),),
        ),
    ),
    clause(
        "QC-4.d",
        "condition",
        "or `None`, the config keeps its own mapping object",
        _t(QC, "test_missing_or_none_attributes_do_nothing"),
        "QC-4: the mapping was replaced",
        "QC-4",
    ),
    # --- param-mapping -----------------------------------------------------------------------
    clause(
        "PM-1.a",
        "qualifier",
        "`packed_mapping`, a mapping of `str` to a list of `str`",
        _t(PM, "test_a_mapping_that_is_not_a_dict_is_kept_as_given"),
        "PM-1: ParamMapping(",
        (
            "only a dict is accepted as a mapping",
            (("    if not isinstance(packed_mapping, Mapping):\n", "    if not isinstance(packed_mapping, dict):\n"),),
        ),
    ),
    clause(
        "PM-1.b",
        "qualifier",
        "`ParamMapping(packed_mapping).packed_mapping` is the very object given (not a copy)",
        _t(PM, "test_packed_mapping_is_kept_as_given"),
        "PM-1: packed_mapping is not the object given",
        "PM-1",
    ),
    clause(
        "PM-1.c",
        "plain",
        "construction does not modify `packed_mapping`",
        _t(PM, "test_packed_mapping_is_kept_as_given"),
        "PM-1: construction changed the mapping",
        (
            "entries with an empty list are dropped from the given mapping",
            (
                (
                    _PM_INVERT,
                    _PM_INVERT
                    + "        for key in [k for k, v in self.packed_mapping.items() if not v]:\n            del self.packed_mapping[key]\n",
                ),
            ),
        ),
    ),
    clause(
        "PM-2.a",
        "quantifier",
        "the keys of `inverse_packed_mapping` are exactly the sub-names that have at least one occurrence",
        _t(PM, "test_inverse_holds_exactly_the_sub_names"),
        "PM-2: inverse keys",
        "PM-2",
    ),
    clause(
        "PM-2.b",
        "qualifier",
        "Sub-names of self-contained entries",
        _t(PM, "test_inverse_holds_exactly_the_sub_names"),
        "PM-2: inverse keys",
        "PM-4",
    ),
    clause(
        "PM-2.c",
        "qualifier",
        "packed names that occur nowhere as a sub-name are absent",
        _t(PM, "test_inverse_holds_exactly_the_sub_names"),
        "PM-2: inverse keys",
        (
            "every packed name is a key of the inverse too",
            (
                (
                    _PM_INVERT,
                    _PM_INVERT + "            self.inverse_packed_mapping.setdefault(packed_name, (packed_name, 0))\n",
                ),
            ),
        ),
    ),
    clause(
        "PM-2.d",
        "condition",
        "an entry with an empty list contributes nothing",
        _t(PM, "test_inverse_holds_exactly_the_sub_names"),
        "PM-2: inverse keys",
        (
            "an entry with an empty list maps its own name",
            (
                (
                    _PM_LOOP,
                    "            if not sub_params:\n                self.inverse_packed_mapping[packed_name] = (packed_name, 0)\n"
                    + _PM_LOOP,
                ),
            ),
        ),
    ),
    clause(
        "PM-3.a",
        "qualifier",
        "`inverse_packed_mapping[s] == (p, i)` where `(p, i)` is the **last** occurrence of `s`",
        _t(PM, "test_inverse_points_at_the_last_occurrence"),
        "PM-3: ",
        "PM-3",
    ),
    clause(
        "PM-3.b",
        "qualifier",
        "(or one entry repeats it), the later one wins",
        _t(PM, "test_inverse_points_at_the_last_occurrence"),
        "PM-3: ",
        (
            "within an entry the first index wins (across entries the last)",
            (("enumerate(sub_params)", "reversed(list(enumerate(sub_params)))"),),
        ),
    ),
    clause(
        "PM-3.c",
        "quantifier",
        "`packed_mapping[p][i] == s` for every key (the mapping round-trips)",
        _t(PM, "test_packed_to_subs_to_packed_round_trips"),
        "PM-3: mapping[",
        ("indices count from 1", (("enumerate(sub_params)", "enumerate(sub_params, 1)"),)),
    ),
    clause(
        "PM-4.a",
        "plain",
        'A self-contained entry `{"W_pack": ["W_pack"]}` adds nothing to the inverse',
        _t(PM, "test_self_contained_entries_are_skipped"),
        "PM-4: self-contained",
        "PM-4",
    ),
    clause(
        "PM-4.b",
        "qualifier",
        'An entry that lists its own name *among others* (`{"W": ["W", "x"]}`) is not self-contained: `W` maps to `("W", 0)`',
        _t(PM, "test_an_entry_listing_its_own_name_among_others_is_not_self_contained"),
        "PM-4: the entry W: ",
        (
            "an entry that lists its own name is skipped",
            (
                (
                    "            if len(sub_params) == 1 and sub_params[0] == packed_name:\n",
                    "            if packed_name in sub_params:\n",
                ),
            ),
        ),
    ),
    clause(
        "PM-5.a",
        "condition",
        "`module_name == key`",
        _t(PM, "test_get_sub_modules_matches_whole_components"),
        "PM-5: ",
        (
            "a module name equal to a key does not match it",
            ((_PM_NAMES, '            if module_name.endswith("." + key):'),),
        ),
    ),
    clause(
        "PM-5.b",
        "condition",
        '`module_name.endswith("." + key)`',
        _t(PM, "test_kv_proj_does_not_match_qkv_proj", "test_get_sub_modules_matches_whole_components"),
        "PM-5: ",
        "PM-5",
    ),
    clause(
        "PM-5.c",
        "qualifier",
        "for the **first** key in mapping order",
        _t(PM, "test_the_first_matching_key_wins"),
        "PM-5: ",
        (
            "the last matching key wins",
            (
                (
                    "        for key, value in self.packed_mapping.items():\n",
                    "        for key, value in reversed(list(self.packed_mapping.items())):\n",
                ),
            ),
        ),
    ),
    clause(
        "PM-5.d",
        "qualifier",
        "the list returned is the stored list object itself",
        _t(PM, "test_get_sub_modules_matches_whole_components"),
        "PM-5: get_sub_modules returned a copy",
        (
            "a copy of the list is returned",
            (("                return key, value\n", "                return key, list(value)\n"),),
        ),
    ),
    clause(
        "PM-5.e",
        "condition",
        "`None` when no key matches",
        _t(PM, "test_get_sub_modules_matches_whole_components"),
        "PM-5: ",
        (
            "when no key matches at a dot, a bare suffix match is returned",
            (
                (
                    "        return None\n\n\ndef configure_quant_config",
                    "        return next(((key, value) for key, value in self.packed_mapping.items() if module_name.endswith(key)), None)\n\n\ndef configure_quant_config",
                ),
            ),
        ),
    ),
    clause(
        "PM-7.a",
        "qualifier",
        "a value that is not a mapping",
        _t(PM, "test_a_mapping_of_the_wrong_types_is_a_type_error"),
        "PM-7: ParamMapping(",
        (
            "a value that is not a mapping is a ValueError",
            (
                (
                    '        raise TypeError(\n            f"packed_mapping must be a mapping',
                    '        raise ValueError(\n            f"packed_mapping must be a mapping',
                ),
            ),
        ),
    ),
    clause(
        "PM-7.b",
        "qualifier",
        "a mapping with a key that is not a `str`",
        _t(PM, "test_a_mapping_of_the_wrong_types_is_a_type_error"),
        "PM-7: ParamMapping(",
        ("a key's type is not checked", (("        if not isinstance(packed_name, str):\n", "        if False:\n"),)),
    ),
    clause(
        "PM-7.c",
        "qualifier",
        "a value that is not a list (or tuple)",
        _t(PM, "test_a_mapping_of_the_wrong_types_is_a_type_error"),
        "PM-7: ParamMapping(",
        (
            "a dict value is accepted as a list of its keys",
            (
                (
                    "        if not isinstance(sub_params, (list, tuple)):\n",
                    "        if not isinstance(sub_params, (list, tuple, dict)):\n",
                ),
            ),
        ),
    ),
    clause(
        "PM-7.d",
        "qualifier",
        "(or tuple)",
        _t(PM, "test_tuple_values_are_accepted"),
        "PM-7: ParamMapping(",
        (
            "a tuple value is rejected",
            (
                (
                    "        if not isinstance(sub_params, (list, tuple)):\n",
                    "        if not isinstance(sub_params, list):\n",
                ),
            ),
        ),
    ),
    clause(
        "PM-7.e",
        "qualifier",
        "list (or tuple) of `str`",
        _t(PM, "test_a_mapping_of_the_wrong_types_is_a_type_error"),
        "PM-7: ParamMapping(",
        (
            "a sub-name's type is not checked",
            (("            if not isinstance(sub_name, str):\n", "            if False:\n"),),
        ),
    ),
    clause(
        "PM-7.f",
        "qualifier",
        "a bare `str` value included",
        _t(PM, "test_a_mapping_of_the_wrong_types_is_a_type_error"),
        "PM-7: ParamMapping(",
        (
            "a str value is accepted as a sequence of names (vLLM 0.9.2)",
            (
                (
                    "        if not isinstance(sub_params, (list, tuple)):\n",
                    "        if not isinstance(sub_params, (list, tuple, str)):\n",
                ),
            ),
        ),
    ),
    clause(
        "PM-7.g",
        "plain",
        "raises `TypeError` (not another type)",
        _t(PM, "test_a_mapping_of_the_wrong_types_is_a_type_error"),
        "PM-7: ParamMapping(",
        "PM-7",
    ),
    clause(
        "PM-8.a",
        "qualifier",
        "an empty key",
        _t(PM, "test_an_empty_name_is_a_value_error"),
        "PM-8: ParamMapping(",
        (
            "an empty key is accepted",
            (
                (
                    "        if not packed_name:\n            raise ValueError(",
                    "        if False:\n            raise ValueError(",
                ),
            ),
        ),
    ),
    clause(
        "PM-8.b",
        "qualifier",
        'an empty sub-name (`""`)',
        _t(PM, "test_an_empty_name_is_a_value_error"),
        "PM-8: ParamMapping(",
        (
            "an empty sub-name is accepted",
            (
                (
                    "            if not sub_name:\n                raise ValueError(",
                    "            if False:\n                raise ValueError(",
                ),
            ),
        ),
    ),
    clause(
        "PM-8.c",
        "plain",
        "raises `ValueError` (not another type)",
        _t(PM, "test_an_empty_name_is_a_value_error"),
        "PM-8: ParamMapping(",
        "PM-8",
    ),
    clause(
        "PM-9.a",
        "condition",
        "the whole value when it is not a mapping",
        _t(PM, "test_the_rejection_names_the_offending_part"),
        "PM-9: the error for",
        (
            "a value that is not a mapping is named by its type only",
            (('f"got {type(packed_mapping).__name__}: {packed_mapping!r}"', 'f"got {type(packed_mapping).__name__}"'),),
        ),
    ),
    clause(
        "PM-9.b",
        "qualifier",
        "else the first bad key",
        _t(PM, "test_the_rejection_names_the_offending_part"),
        "PM-9: the error for",
        (
            "a key of the wrong type is not named",
            (
                (
                    'raise TypeError(f"packed_mapping key {packed_name!r} is not a str")',
                    'raise TypeError("packed_mapping has a key that is not a str")',
                ),
            ),
        ),
    ),
    clause(
        "PM-9.c",
        "qualifier",
        "key, value or sub-name",
        _t(PM, "test_the_rejection_names_the_offending_part"),
        "PM-9: the error for",
        (
            "a value that is not a list is named by its type only",
            (('f"got {type(sub_params).__name__}: {sub_params!r}"', 'f"got {type(sub_params).__name__}"'),),
        ),
    ),
    clause(
        "PM-9.d",
        "qualifier",
        "value or sub-name",
        _t(PM, "test_the_rejection_names_the_offending_part"),
        "PM-9: the error for",
        (
            "a sub-name of the wrong type is not named",
            (("holds {sub_name!r}, which is not a str", "holds a sub-name that is not a str"),),
        ),
    ),
    clause(
        "PM-9.e",
        "qualifier",
        "the message of the error of PM-7 or PM-8",
        _t(PM, "test_the_rejection_names_the_offending_part"),
        "PM-9: the error for",
        (
            "the errors of PM-8 do not name the empty name ''",
            (
                ("has an empty key ''\")", 'has an empty key")'),
                ("holds an empty sub-name ''\")", 'holds an empty sub-name")'),
            ),
        ),
    ),
    clause(
        "PM-9.f",
        "qualifier",
        "the first bad key, value or sub-name",
        _t(PM, "test_the_rejection_names_the_first_offending_part"),
        "PM-9: the error for",
        (
            "the last bad sub-name of an entry is named",
            (("        for sub_name in sub_params:\n", "        for sub_name in reversed(sub_params):\n"),),
        ),
    ),
    clause(
        "PM-10.a",
        "plain",
        "a construction that raises (PM-7, PM-8) does not modify the argument",
        _t(PM, "test_a_rejected_mapping_is_left_as_it_was"),
        "PM-10: ParamMapping(",
        "PM-10",
    ),
    clause(
        "PM-10.b",
        "qualifier",
        "(PM-7, PM-8)",
        _t(PM, "test_a_rejected_mapping_is_left_as_it_was"),
        "PM-10: ParamMapping(",
        (
            "empty sub-names are removed from the argument before the ValueError",
            (
                (
                    "            if not sub_name:\n                raise ValueError(",
                    "            if not sub_name:\n                packed_mapping[packed_name] = [s for s in sub_params if s]  # type: ignore[index]\n                raise ValueError(",
                ),
            ),
        ),
    ),
    clause(
        "PM-11.a",
        "qualifier",
        "`inverse_packed_mapping` is `given` itself (not a copy)",
        _t(PM, "test_a_given_inverse_is_extended_in_place"),
        "PM-11: inverse_packed_mapping is not the dict given",
        "PM-11",
    ),
    clause(
        "PM-11.b",
        "qualifier",
        "(which overwrite `given`'s entries for the same sub-names)",
        _t(PM, "test_a_given_inverse_is_extended_in_place"),
        "PM-11: given",
        (
            "given entries win over the mapping's",
            (
                (_PM_VALIDATE, _PM_VALIDATE + "        given_keys = set(self.inverse_packed_mapping)\n"),
                (_PM_INVERT, "                if param_name not in given_keys:\n    " + _PM_INVERT),
            ),
        ),
    ),
    clause(
        "PM-11.c",
        "quantifier",
        "keeps every other entry `given` had",
        _t(PM, "test_a_given_inverse_is_extended_in_place"),
        "PM-11: given",
        (
            "the given inverse is emptied first",
            ((_PM_VALIDATE, _PM_VALIDATE + "        self.inverse_packed_mapping.clear()\n"),),
        ),
    ),
    # --- post-loading ------------------------------------------------------------------------
    clause(
        "PW-1.a",
        "qualifier",
        "in traversal order",
        _t(PW, "test_each_quantized_module_is_processed_once_in_order"),
        "PW-1: each quantized module once, in traversal order",
        (
            "the first pass walks the traversal backwards",
            ((_PW_FIRST, _PW_FIRST.replace("model.named_modules()", "reversed(list(model.named_modules()))")),),
        ),
    ),
    clause(
        "PW-1.b",
        "quantifier",
        "`m.quant_method.process_weights_after_loading(m)` is called exactly once",
        _t(PW, "test_each_quantized_module_is_processed_once_in_order"),
        "PW-1: each quantized module once, in traversal order",
        (
            "a module registered under several names is processed once per name",
            ((_PW_FIRST, _PW_FIRST.replace("model.named_modules()", "model.named_modules(remove_duplicate=False)")),),
        ),
    ),
    clause(
        "PW-1.c",
        "qualifier",
        "`m.quant_method.process_weights_after_loading(m)`",
        _t(PW, "test_each_quantized_module_is_processed_once_in_order"),
        "PW-1: each quantized module once, in traversal order",
        (
            "with a CPU target the hook is given the model, not the module",
            ((_PW_CPU_HOOK, _PW_CPU_HOOK.replace("(module)", "(model)")),),
        ),
    ),
    clause(
        "PW-1.d",
        "condition",
        "A `quant_method` that is `None` or is any other object — even one with a `process_weights_after_loading` method — is not called",
        _t(PW, "test_each_quantized_module_is_processed_once_in_order"),
        "PW-1: each quantized module once, in traversal order",
        "PW-1",
    ),
    clause(
        "PW-2.a",
        "plain",
        "its `quant_method` is not called by the traversal",
        _t(PW, "test_cross_qkv_layers_run_their_own_hook"),
        "PW-2: the traversal called a cross-QKV layer's quant_method",
        "PW-2",
    ),
    clause(
        "PW-2.b",
        "quantifier",
        "its own `process_weights_after_loading()` (no arguments) is called exactly once",
        _t(PW, "test_cross_qkv_layers_run_their_own_hook"),
        "PW-2: each cross-QKV hook once, in the first pass",
        (
            "a cross-QKV layer's hook runs twice",
            ((_PW_QKV, "            module.process_weights_after_loading()\n" + _PW_QKV),),
        ),
    ),
    clause(
        "PW-2.c",
        "condition",
        "in the same first pass",
        _t(PW, "test_cross_qkv_layers_run_their_own_hook"),
        "PW-2: each cross-QKV hook once, in the first pass",
        (
            "cross-QKV hooks run after the quantization hooks, not among them",
            (
                (_PW_FIRST, "    deferred_qkv = []\n" + _PW_FIRST),
                (_PW_QKV, "            deferred_qkv.append(module)\n            continue\n"),
                (
                    _PW_BETWEEN,
                    "    for module in deferred_qkv:\n        module.process_weights_after_loading()\n" + _PW_BETWEEN,
                ),
            ),
        ),
    ),
    clause(
        "PW-4.a",
        "condition",
        "after the first pass has finished",
        _t(PW, "test_attention_hooks_run_last_with_the_model_dtype"),
        "PW-4: an attention hook ran before the first pass ended",
        (
            "attention hooks run in the first pass, in traversal order",
            (
                (_PW_SECOND, "    for _, module in model.named_modules():\n        if False:"),
                (
                    _PW_FIRST,
                    _PW_FIRST.replace(
                        "\n        if isinstance(module, QKVCrossParallelLinear):",
                        "\n"
                        + _PW_ATTENTION_IF
                        + "\n    "
                        + _PW_ATTENTION_HOOK
                        + "        if isinstance(module, QKVCrossParallelLinear):",
                    ),
                ),
            ),
        ),
    ),
    clause(
        "PW-4.b",
        "qualifier",
        "for each `Attention` module that has a `process_weights_after_loading` attribute",
        _t(PW, "test_only_attention_modules_get_the_attention_hook_call"),
        "PW-4: the second pass called the hook of",
        (
            "every module with a process_weights_after_loading attribute gets the attention call",
            (
                (
                    _PW_ATTENTION_IF,
                    _PW_ATTENTION_IF.replace(
                        "isinstance(module, Attention)", "not isinstance(module, QKVCrossParallelLinear)"
                    ),
                ),
            ),
        ),
    ),
    clause(
        "PW-4.c",
        "quantifier",
        "`module.process_weights_after_loading(model_config.dtype)` exactly once",
        _t(PW, "test_attention_hooks_run_last_with_the_model_dtype"),
        "PW-4: each attention hook once, in traversal order, with model_config.dtype",
        (
            "an attention module registered under several names is called once per name",
            ((_PW_SECOND, _PW_SECOND.replace("model.named_modules()", "model.named_modules(remove_duplicate=False)")),),
        ),
    ),
    clause(
        "PW-4.d",
        "qualifier",
        "`module.process_weights_after_loading(model_config.dtype)`",
        _t(PW, "test_attention_hooks_run_last_with_the_model_dtype"),
        "PW-4: each attention hook once, in traversal order, with model_config.dtype",
        "PW-4",
    ),
    clause(
        "PW-6.a",
        "plain",
        "every parameter of the module that was on the CPU before the call is on `target_device`",
        _t(PW, "test_quantize_methods_run_inside_the_device_context"),
        "PW-6: a quantize method saw parameters on",
        "PW-6",
    ),
    clause(
        "PW-7.a",
        "plain",
        "after each call of PW-1, the parameters of PW-6 are on the CPU again, holding what the hook left",
        _t(PW, "test_quantize_methods_run_inside_the_device_context"),
        "PW-7: ",
        "PW-7",
    ),
    clause(
        "PW-7.b",
        "condition",
        "before the next hook runs",
        _t(PW, "test_quantize_methods_run_inside_the_device_context"),
        "PW-7: while a quantize method ran, another offloaded layer had parameters on",
        (
            "every module's device context is left only after the whole first pass",
            (
                (_PW_FIRST, "    stack = contextlib.ExitStack()\n" + _PW_FIRST),
                (
                    _PW_CONTEXT,
                    "            stack.enter_context(device_loading_context(module, target_device))\n"
                    "            quant_method.process_weights_after_loading(module)\n",
                ),
                (_PW_BETWEEN, "    stack.close()\n" + _PW_BETWEEN),
            ),
        ),
    ),
    clause(
        "PW-8.a",
        "plain",
        "Either way the hook runs once with the module's parameters where they were.",
        _t(PW, "test_with_a_cpu_target_hooks_see_parameters_in_place"),
        "PW-8: with a CPU target",
        "PW-8",
    ),
    clause(
        "PW-9.a",
        "quantifier",
        "an exception raised by any hook (quantization, cross-QKV or attention)",
        _t(PW, "test_a_hook_exception_propagates_unchanged"),
        "PW-9: the hook raised",
        "PW-9",
    ),
    clause(
        "PW-9.b",
        "quantifier",
        "cross-QKV",
        _t(PW, "test_a_hook_exception_propagates_unchanged"),
        "PW-9: the hook raised",
        (
            "a failing cross-QKV hook is ignored",
            (
                (
                    _PW_QKV,
                    "            with contextlib.suppress(Exception):\n                module.process_weights_after_loading()\n            continue\n",
                ),
            ),
        ),
    ),
    clause(
        "PW-9.c",
        "quantifier",
        "or attention)",
        _t(PW, "test_a_hook_exception_propagates_unchanged"),
        "PW-9: the hook raised",
        (
            "a failing attention hook is ignored",
            ((_PW_ATTENTION_HOOK, "            with contextlib.suppress(Exception):\n    " + _PW_ATTENTION_HOOK),),
        ),
    ),
    clause(
        "PW-9.d",
        "qualifier",
        "as the same object, neither wrapped nor swallowed",
        _t(PW, "test_a_hook_exception_propagates_unchanged"),
        "PW-9: the hook raised",
        (
            "a failing quantization hook's exception is wrapped in a RuntimeError",
            (
                (
                    _PW_CONTEXT,
                    "            with device_loading_context(module, target_device):\n                try:\n"
                    "                    quant_method.process_weights_after_loading(module)\n"
                    "                except Exception as error:\n"
                    '                    raise RuntimeError(f"{type(module).__name__}: {error}") from error\n',
                ),
                (
                    _PW_CPU_HOOK,
                    "                try:\n                    quant_method.process_weights_after_loading(module)\n"
                    "                except Exception as error:\n"
                    '                    raise RuntimeError(f"{type(module).__name__}: {error}") from error\n'
                    "                continue\n",
                ),
            ),
        ),
    ),
    clause(
        "PW-10.a",
        "quantifier",
        "no later hook of either pass runs",
        _t(PW, "test_no_hook_runs_after_a_failing_one"),
        "PW-10: after hook",
        "PW-10",
    ),
    clause(
        "PW-10.b",
        "quantifier",
        "no cross-QKV hook",
        _t(PW, "test_no_hook_runs_after_a_failing_one"),
        "PW-10: after hook",
        (
            "a failing cross-QKV hook is re-raised only after every other hook",
            (
                (_PW_FIRST, "    deferred = []\n" + _PW_FIRST),
                (
                    _PW_QKV,
                    "            try:\n                module.process_weights_after_loading()\n"
                    "            except Exception as error:\n                deferred.append(error)\n            continue\n",
                ),
                (_PW_ATTENTION_HOOK, _PW_ATTENTION_HOOK + "    if deferred:\n        raise deferred[0]\n"),
            ),
        ),
    ),
    clause(
        "PW-10.c",
        "quantifier",
        "no attention hook",
        _t(PW, "test_no_hook_runs_after_a_failing_one"),
        "PW-10: after hook",
        (
            "a failing attention hook is re-raised only after the other attention hooks",
            (
                (_PW_SECOND, "    deferred = []\n" + _PW_SECOND),
                (
                    _PW_ATTENTION_HOOK,
                    "            try:\n    " + _PW_ATTENTION_HOOK + "            except Exception as error:\n"
                    "                deferred.append(error)\n    if deferred:\n        raise deferred[0]\n",
                ),
            ),
        ),
    ),
    clause(
        "PW-11.a",
        "plain",
        "the device context restores that module's CPU parameters before the exception leaves",
        _t(PW, "test_a_failing_hook_module_is_restored_first"),
        "PW-11: a failed hook left",
        "PW-11",
    ),
)
"""Every clause of the chapters in ``CHAPTERS_DONE``, in spec order."""

BY_ID: dict[str, Clause] = {c.id: c for c in CLAUSES}
