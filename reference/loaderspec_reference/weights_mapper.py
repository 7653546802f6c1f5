"""``WeightsMapper``, as in ``vllm.model_executor.models.utils``: renames checkpoint keys."""

from __future__ import annotations

from dataclasses import dataclass, field

WeightsMapping = dict[str, str | None]
"""Old name part -> new name part; ``None`` drops the weight."""


@dataclass
class WeightsMapper:
    """Maps HF checkpoint names to model names by substring, then prefix, then suffix."""

    orig_to_new_substr: WeightsMapping = field(default_factory=dict)
    orig_to_new_prefix: WeightsMapping = field(default_factory=dict)
    orig_to_new_suffix: WeightsMapping = field(default_factory=dict)

    def map_name(self, key: str) -> str | None:
        """The new name of ``key``, or None when a rule drops it."""
        for substr, new in self.orig_to_new_substr.items():
            if substr in key:
                if new is None:
                    return None
                key = key.replace(substr, new, 1)
        for prefix, new in self.orig_to_new_prefix.items():
            if key.startswith(prefix):
                if new is None:
                    return None
                key = new + key[len(prefix) :]
        for suffix, new in self.orig_to_new_suffix.items():
            if key.endswith(suffix):
                if new is None:
                    return None
                key = key[: len(key) - len(suffix)] + new
        return key
