"""What every CLI command shares: the consoles, the settings (with logging configured) and the error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console, ConsoleDimensions
from rich.text import Text

from newsletter import config, logs
from newsletter.errors import NewsletterError

# Wide enough for any line we print: output piped to a file or another program is never wrapped.
UNWRAPPED = 10_000


class CommandConsole(Console):
    """A Rich console that wraps to the terminal, and not at all when its output is not a terminal.

    Rich otherwise wraps at 80 columns (or at the width of whatever terminal stdin is) when output goes to a
    file, which breaks addresses, links and table rows in two for anyone who greps or parses them.
    """

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size, or a width no line reaches when the output is not a terminal."""
        found = super().size
        return found if self.is_terminal else ConsoleDimensions(UNWRAPPED, found.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


# Printed text is catalog titles, categories, file names and error messages quoting them: never Rich markup,
# or a title holding "[/bold]" crashes `issue build` and every later `issue list`. Styles go in as Text.
out = CommandConsole(markup=False)
err = CommandConsole(stderr=True, markup=False)
P = ParamSpec("P")
R = TypeVar("R")


def load_settings() -> config.Settings:
    """The settings from the environment and ``.env`` (a ConfigError names what is wrong), with logging configured
    from them: every command logs one line per event in NEWSLETTER_LOG_FORMAT at NEWSLETTER_LOG_LEVEL."""
    settings = config.load_settings()
    logs.configure(settings)
    return settings
def group(help: str, **options: Any) -> typer.Typer:
    """A command group whose ``--help`` reads as click's: flags bare, ``--week <str>``, ``[default: 8000]``.

    Typer's Rich help writes ``<bool>`` after every flag, as if ``--dry-run`` took a value, and draws boxes
    that wrap at 80 columns; the plain layout says the same without either.
    """
    return typer.Typer(no_args_is_help=True, rich_markup_mode=None, help=help, **options)


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


