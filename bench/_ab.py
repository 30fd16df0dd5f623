"""A/B measurements in one session: this tree against an earlier commit, in alternating fresh processes.

``export(ref)`` writes the commit's files to a temporary folder; a child process
started with ``child_env(tree)`` imports headrace from there (``PYTHONPATH`` comes
before the editable install), while the bench code itself stays this tree's. The
machine's load then weighs on both sides alike, and the ratio is what to read.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def export(ref: str) -> Path:
    """The files of commit ``ref`` of this repository, in a new temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="headrace-ab-"))
    archive = folder / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), ref], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    archive.unlink()
    return folder / "tree"


def child_env(tree: Path | None) -> dict[str, str]:
    """The environment of a child that imports headrace from ``tree`` (``None``: this tree)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree if tree is not None else ROOT)
    return env


def run_child(script: Path, args: list[str], tree: Path | None, timeout: float = 900) -> dict[str, Any]:
    """Run ``script`` with ``args`` in a fresh process; its last stdout line is a JSON object."""
    done = subprocess.run([sys.executable, str(script), *args], env=child_env(tree), capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def alternate(rounds: int) -> Iterator[tuple[int, bool]]:
    """(round, this tree first?) so that neither side always runs first."""
    for i in range(rounds):
        yield i, i % 2 == 0


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} (range {min(values):.3f}-{max(values):.3f})"
