"""Output paths, checked before a long run rather than after it."""

from __future__ import annotations

from pathlib import Path


def cannot_write(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` (its folder exists), or None when it can.

    The file is opened for appending now, because permissions alone cannot tell (a root user
    passes every permission check, yet cannot create files under /proc); a file this probe
    created is removed again, an existing one is left as it was."""
    existed = path.exists()
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        return str(error.strerror or error)
    finally:
        if not existed and path.exists():
            path.unlink()
    return None
