"""axe-core for the browser tests: installed once with npm into the user's cache, injected into a page.

The suite fetches it itself, so a fresh clone needs nothing but npm (Debian: ``apt-get install -y npm``). It
lives outside the work tree, shared by every checkout on the machine; a lock keeps two runs from installing
into it at once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

PACKAGE = "axe-core@4"
BLOCKING = ("serious", "critical")


def cache_dir() -> Path:
    """Where axe-core is installed: ``$XDG_CACHE_HOME`` (or ``~/.cache``)/newsletter-tests/axe-core-4."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "newsletter-tests" / "axe-core-4"


def install() -> Path:
    """The path of ``axe.min.js``, running ``npm install`` the first time; a test failure says what is missing."""
    folder = cache_dir()
    script = folder / "node_modules" / "axe-core" / "axe.min.js"
    if script.is_file():
        return script
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("the accessibility tests need axe-core, which they install with npm, and npm is not installed: "
                    "apt-get install -y npm (or install Node.js)")
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.is_file():
            done = subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                                   "--no-save", PACKAGE], capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0 or not script.is_file():
                pytest.fail(f"npm install {PACKAGE} into {folder} failed (exit {done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-2000:]}")
    return script


def violations(page: Any, script: Path) -> list[str]:
    """axe-core's serious and critical violations on ``page``, one line per element, empty when there are none."""
    page.add_script_tag(path=str(script))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}) {node['target']}: {node['failureSummary']}"
            for v in result["violations"] if v["impact"] in BLOCKING for node in v["nodes"]]
