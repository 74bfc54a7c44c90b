"""What every CLI command shares: the consoles and the error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from newsletter.errors import NewsletterError

out = Console()
err = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the publisher's errors into a clear message and exit status 1, never a traceback."""
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except NewsletterError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None
    return run


