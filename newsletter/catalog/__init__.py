"""Stored verdicts: import, panel math, queries and export."""
