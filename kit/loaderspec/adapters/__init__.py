"""The shipped adapters: ``reference``, ``vllm`` and ``sglang``; each module defines ``ADAPTER``."""
