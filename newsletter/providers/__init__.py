"""Providers: one module per mail service, all on one base class (``base.Provider``)."""
