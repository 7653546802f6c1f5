"""``init_logger``, as in ``vllm.logger``: a standard-library logger per module."""

import logging


def init_logger(name: str) -> logging.Logger:
    """Return the logger called ``name`` (no handlers added: the application decides)."""
    return logging.getLogger(name)
