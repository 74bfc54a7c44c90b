"""The editor's desk under ``/editor``: sign-in, the issues dashboard, the issue page and its actions.

It is part of the web app because it shares the app's pages, CSRF and security headers; what it does to issues
is ``newsletter.desk``, its figures are ``subscribers.figures``, sign-in pauses and sessions are
``newsletter.editor_lockout`` and ``newsletter.editor_sessions``. Modules here import ``pages`` (the desk's
collaborators); ``issue_actions`` imports ``issue_page``; nothing imports back.
"""
