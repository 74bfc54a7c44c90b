"""ruff and mypy are part of the suite, so a red lint is a red build."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [
    ["ruff", "check", "."],
    [sys.executable, "-m", "mypy", "newsletter", "subscribers", "scheduler.py"],
], ids=["ruff", "mypy"])
def test_tool_is_clean(command: list[str]) -> None:
    if shutil.which(command[0]) is None and command[0] != sys.executable:
        pytest.fail(f"{command[0]} is not installed: pip install -e '.[test]'")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _functions(path: Path) -> list[tuple[str, int]]:
    """Every function in ``path`` (nested ones too) with its length in lines, decorators left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", (node.end_lineno or node.lineno) - node.lineno + 1)
            for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_function_of_the_web_layer_reaches_forty_lines() -> None:
    found = [item for path in sorted((ROOT / "newsletter" / "web").rglob("*.py")) for item in _functions(path)]
    assert found, "the web layer lives in newsletter/web"
    assert [f"{name}: {lines} lines" for name, lines in found if lines >= 40] == []
