"""Capturing what the implementation's ``utils`` module logs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def utils_log(impl) -> Iterator[list[logging.LogRecord]]:
    """Records the implementation's utils logger (vLLM's loggers do not propagate)."""
    handler = _Collect()
    logger = logging.getLogger(impl.utils_logger_name)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
