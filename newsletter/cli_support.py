"""What every CLI command shares: the consoles, the settings (with logging configured) and the error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from newsletter import config, logs
from newsletter.errors import NewsletterError

# Printed text is catalog titles, categories, file names and error messages quoting them: never Rich markup,
# or a title holding "[/bold]" crashes `issue build` and every later `issue list`. Styles go in as Text.
out = Console(markup=False)
err = Console(stderr=True, markup=False)
P = ParamSpec("P")
R = TypeVar("R")


def load_settings() -> config.Settings:
    """The settings from the environment and ``.env`` (a ConfigError names what is wrong), with logging configured
    from them: every command logs one line per event in NEWSLETTER_LOG_FORMAT at NEWSLETTER_LOG_LEVEL."""
    settings = config.load_settings()
    logs.configure(settings)
    return settings


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the publisher's errors into a clear message and exit status 1, never a traceback."""
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except NewsletterError as exc:
            err.print(Text.assemble(("error:", "bold red"), " ", str(exc)), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    return run


