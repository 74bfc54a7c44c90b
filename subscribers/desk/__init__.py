"""The editor's desk under ``/editor``: issues, previews, checks, edits, approval, figures.

It lives with the web app (``subscribers.web`` mounts it) because it shares the app's pages, CSRF and
security headers, and because its figures read subscribers; what it does to issues is ``newsletter.desk``.
"""
