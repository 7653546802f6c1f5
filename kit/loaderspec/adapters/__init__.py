"""The shipped adapters: ``reference`` and ``vllm``; each module defines ``ADAPTER``."""
