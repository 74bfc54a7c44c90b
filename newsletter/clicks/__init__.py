"""Clicks: an issue's links to the site go through this app's redirect, which counts them.

``links`` keeps each issue's link table and points the rendered emails at ``/r/{issue}/{link}``; ``rules`` says
which requests are scanner traffic; ``recorder`` buffers clicks and writes them in batches off the request path;
``stats`` reads an issue's click figures back and ``chart`` draws them.
"""
