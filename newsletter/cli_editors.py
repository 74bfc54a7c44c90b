"""``newsletter editor …``: add editors, list them, hash a password for NEWSLETTER_EDITOR_PASSWORD_HASH."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from newsletter import editors, wiring
from newsletter.cli_support import group, handled, load_settings, out
from newsletter.db import session_scope

editor_app = group("Who may sign in to the editor's desk at /editor.")
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@editor_app.command("add")
@handled
def editor_add(
    name: Annotated[str, typer.Argument(help="The name to sign in with.")],
    email: Annotated[str | None, typer.Option(help="Where review emails for this editor go.")] = None,
    password_stdin: StdinOption = False,
) -> None:
    """Add an editor, or set a new password (and address) for one; their open sessions end."""
    with wiring.build(load_settings()) as wired:
        created = editors.add_editor(wired.engine, name, _password(password_stdin), email=email)
    out.print(f"{'Added' if created else 'Updated'} editor {name}; sign in at /editor/login")


@editor_app.command("list")
@handled
def editor_list() -> None:
    """Named editors and their review addresses."""
    with wiring.build(load_settings()) as wired, session_scope(wired.engine) as session:
        for name, email in editors.list_editors(session):
            out.print(f"{name}  {email or '(no address)'}", highlight=False)


@editor_app.command("hash")
@handled
def editor_hash(password_stdin: StdinOption = False) -> None:
    """Print a password hash for NEWSLETTER_EDITOR_PASSWORD_HASH (the editor named 'editor')."""
    out.print(editors.hash_password(_password(password_stdin)), highlight=False, soft_wrap=True)
