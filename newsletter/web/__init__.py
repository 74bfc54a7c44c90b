"""The web app, an entry point like the CLI: ``app.create_app`` assembles it, routes are grouped by audience.

``reader`` (sign-up, confirmation, preferences, unsubscribe), ``provider_hooks`` (webhooks), ``archive`` (the
public archive and feed), ``desk`` (the editor's desk); ``site`` and ``deps`` are what the routes share.
"""
