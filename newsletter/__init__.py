"""Weekly AI Tool Verdicts: catalog → digest → render → issue → dispatch → provider."""
