"""Weekly AI Tool Verdicts: catalog → digest → render → issue → dispatch → provider."""

import sys

# httpx imports its own command line (rich, pygments, click: ~6 MB) whenever those are installed, as ours are for
# the CLI. No process of ours runs httpx's CLI, so it is never loaded: a sender, the web app or the scheduler then
# carry no rendering stack unless they use it themselves. (httpx falls back to a stub ``main`` by design.)
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
