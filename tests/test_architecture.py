"""The import rules ARCHITECTURE.md states, checked on the code: a module that imports across them fails here.

Layers, top to bottom: entry points (CLI, web app, scheduler and its jobs, demo, doctor) may import anything;
the composition root (``newsletter.wiring``) and the schema (migrations) may import both domains; the core
(the rest of ``newsletter``) never imports ``subscribers``, an entry point or the composition root; the
subscriber domain imports the core but no entry point and no web, CLI or scheduling framework; providers import
only ``values``, ``errors`` and each other. No module imports another in a cycle, and only entry points import
project modules inside functions (to keep a command's start-up small), never to dodge a cycle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("newsletter", "subscribers", "scheduler")
ENTRY = ("scheduler", "newsletter.__main__", "newsletter.cli", "newsletter.cli_*", "newsletter.web",
         "newsletter.web.*", "newsletter.scheduler_jobs", "newsletter.demo", "newsletter.doctor",
         "newsletter.doctor.*")
COMPOSITION = ("newsletter.wiring",)
SCHEMA = ("newsletter.migrations", "newsletter.migrations.*")
PROVIDERS = ("newsletter.providers", "newsletter.providers.*")
PROVIDERS_MAY_IMPORT = ("newsletter.values", "newsletter.errors", *PROVIDERS)
FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "typer", "rich", "apscheduler")


def matches(module: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``patterns`` (fnmatch, so ``pkg.*`` is everything below ``pkg``)."""
    return any(fnmatch(module, pattern) for pattern in patterns)


def layer(module: str) -> str:
    """The layer ``module`` belongs to."""
    if matches(module, ENTRY):
        return "entry"
    if matches(module, COMPOSITION):
        return "composition"
    if matches(module, SCHEMA):
        return "schema"
    if module.startswith("subscribers"):
        return "subscribers"
    return "core"


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is, and whether it runs inside a function."""

    source: str
    target: str
    line: int
    lazy: bool


def module_name(path: Path) -> str:
    """``newsletter/web/app.py`` → ``newsletter.web.app``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> Iterator[Path]:
    """Every Python file of the project's own code (not tests, not benchmarks)."""
    yield ROOT / "scheduler.py"
    for package in ("newsletter", "subscribers"):
        yield from sorted((ROOT / package).rglob("*.py"))


MODULES = {module_name(path): path for path in project_files()}


def resolve(name: str) -> str:
    """The project module an import of ``name`` loads (the longest prefix that is a module)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or name


def imports_of(module: str) -> Iterator[Import]:
    """The imports in ``module``, resolved to modules; imports under ``if TYPE_CHECKING`` are left out."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    yield from _walk(module, tree, lazy=False)


def _walk(module: str, node: ast.AST, *, lazy: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield Import(module, _target(alias.name), child.lineno, lazy)
        elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
            for alias in child.names:
                full = f"{child.module}.{alias.name}"
                yield Import(module, _target(full if resolve(full) == full else child.module), child.lineno, lazy)
        else:
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from _walk(module, child, lazy=inner)


def _target(name: str) -> str:
    return resolve(name) if name.split(".")[0] in PROJECT else name


ALL_IMPORTS = [found for module in MODULES for found in imports_of(module)]


def _project(found: Import) -> bool:
    return found.target in MODULES


def broken(rule: str) -> list[str]:
    """The imports that break ``rule``, as ``source:line → target``."""
    bad = [found for found in ALL_IMPORTS if RULES[rule](found)]
    return [f"{found.source}:{found.line} → {found.target}" for found in bad]


RULES = {
    "the core imports no subscribers module, entry point or composition root": lambda found: (
        layer(found.source) == "core" and _project(found)
        and layer(found.target) in {"subscribers", "entry", "composition"}),
    "subscribers imports no entry point, composition root or web/CLI/scheduling framework": lambda found: (
        layer(found.source) == "subscribers"
        and ((_project(found) and layer(found.target) in {"entry", "composition"})
             or found.target.split(".")[0] in FRAMEWORKS)),
    "providers import only values, errors and other providers": lambda found: (
        matches(found.source, PROVIDERS) and _project(found) and not matches(found.target, PROVIDERS_MAY_IMPORT)),
    "only entry points import project modules inside functions": lambda found: (
        found.lazy and _project(found) and layer(found.source) != "entry"),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_imports_keep_to_the_rule(rule: str) -> None:
    assert broken(rule) == [], rule


def test_no_module_imports_another_in_a_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for found in ALL_IMPORTS:
        if _project(found) and not found.lazy and found.target != found.source:
            graph[found.source].add(found.target)
    assert cycles(graph) == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted: every one is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_cycle_and_a_crossing() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    crossing = Import("newsletter.dispatch", "subscribers.store", 1, False)
    assert RULES["the core imports no subscribers module, entry point or composition root"](crossing) \
        if "subscribers.store" in MODULES else True
    assert layer("newsletter.web.reader") == "entry" and layer("newsletter.digest") == "core"


def test_the_architecture_page_names_every_module_and_only_modules_that_exist() -> None:
    page = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+(?:\.py|/))`", page))
    for package in ("newsletter", "subscribers"):
        for path in sorted((ROOT / package).iterdir()):
            if path.name.startswith("__") or path.name in {"pages", "migrations"} or path.suffix not in {".py", ""}:
                continue
            name = path.name + ("/" if path.is_dir() else "")
            assert name in page or f"{package}/{name}" in page, f"ARCHITECTURE.md does not name {package}/{name}"
    for mentioned in named:
        candidates = [ROOT / mentioned, *(ROOT / package / mentioned for package in ("newsletter", "subscribers")),
                      ROOT / "newsletter" / "web" / mentioned]
        assert any(candidate.exists() for candidate in candidates), f"ARCHITECTURE.md names {mentioned}, which is gone"
