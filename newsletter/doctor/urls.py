"""Our own URLs: ``NEWSLETTER_PUBLIC_URL`` is https (unless it is this machine), answers, and its RFC 8058 one-click
endpoint takes a POST with 200 and no redirect — proved with the dry-run token, which unsubscribes no one; and, when
``NEWSLETTER_METRICS_TOKEN`` is set, ``/metrics`` answers that bearer token."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from newsletter.doctor.context import Context
from newsletter.doctor.findings import Finding, failed, passed, skipped, warned
from newsletter.errors import ConfigError
from newsletter.setting_needs import is_local

METRICS = "Metrics"
__all__ = ["METRICS", "check_urls", "is_local"]  # is_local lives with the settings, which refuse plain http elsewhere


def check_urls(ctx: Context) -> list[Finding]:
    """The scheme, the site answering, and the one-click endpoint."""
    base = str(ctx.settings.public_url).rstrip("/")
    findings = [_scheme(base)]
    with httpx.Client(transport=ctx.transport, timeout=ctx.timeout, follow_redirects=False) as client:
        answers = _answers(client, base)
        findings.append(answers)
        if answers.status == "fail":
            findings.append(skipped("One-click unsubscribe", "not tried: the public URL does not answer"))
            findings.append(skipped(METRICS, "not tried: the public URL does not answer"))
            return findings
        else:
            try:
                probe = ctx.wiring.signer.mint_probe()
            except ConfigError as exc:
                findings.append(failed("One-click unsubscribe", f"not tried: {exc}", "set NEWSLETTER_SECRET_KEY "
                                       "to the value the app runs with"))
            else:
                findings.append(_one_click(client, base, probe))
        findings.append(_metrics(client, base, ctx))
    return findings


def _scheme(base: str) -> Finding:
    name = "Public URL is https"
    parts = urlsplit(base)
    if parts.scheme == "https":
        return passed(name, base)
    if is_local(parts.hostname or ""):
        return passed(name, f"{base} is this machine: http is fine for trying things out")
    return failed(name, f"{base} is plain http: mail clients' one-click POSTs and readers' links go unencrypted",
                  "serve the app over https (a TLS-terminating proxy) and set NEWSLETTER_PUBLIC_URL=https://…")


def _answers(client: httpx.Client, base: str) -> Finding:
    name = "Public URL answers"
    try:
        response = client.get(f"{base}/")
    except httpx.HTTPError as exc:
        return failed(name, f"{base}/ did not answer: {type(exc).__name__}: {exc}",
                      "start `newsletter serve` (and the proxy in front of it), or correct NEWSLETTER_PUBLIC_URL")
    if response.status_code >= 500:
        return failed(name, f"{base}/ answered HTTP {response.status_code}", "read the web app's log")
    if response.status_code >= 400:
        return warned(name, f"{base}/ answered HTTP {response.status_code}",
                      "is NEWSLETTER_PUBLIC_URL the app's own address (and path)?")
    return passed(name, f"{base}/ answered HTTP {response.status_code}")


def _one_click(client: httpx.Client, base: str, probe: str) -> Finding:
    name = "One-click unsubscribe"
    url = f"{base}/unsubscribe/{probe}"
    try:
        response = client.post(url, data={"List-Unsubscribe": "One-Click"})
    except httpx.HTTPError as exc:
        return failed(name, f"POST {base}/unsubscribe/… did not answer: {type(exc).__name__}",
                      "make sure the proxy passes POSTs through to the app")
    status = response.status_code
    if 300 <= status < 400:
        return failed(name, f"POST {base}/unsubscribe/… redirects (HTTP {status} to "
                            f"{response.headers.get('location', '?')}): mail clients do not follow it",
                      "serve the app at NEWSLETTER_PUBLIC_URL itself (no http→https or host redirect in between)")
    if status == 400:
        return failed(name, "the app refused the dry-run token (HTTP 400)",
                      "the app runs with another NEWSLETTER_SECRET_KEY, or an older version: restart it with these "
                      "settings")
    if status != 200:
        return failed(name, f"POST {base}/unsubscribe/… answered HTTP {status}, not 200",
                      "RFC 8058 needs a 200 to the POST; read the web app's log")
    return passed(name, f"POST {base}/unsubscribe/… answered 200 without redirect (dry run: nothing changed)")


def _metrics(client: httpx.Client, base: str, ctx: Context) -> Finding:
    """``/metrics`` gives Prometheus text to the bearer of the token (a warning otherwise: mail still goes out)."""
    token = ctx.settings.metrics_token
    if token is None:
        return skipped(METRICS, "off: NEWSLETTER_METRICS_TOKEN is not set, so /metrics answers 404")
    try:
        response = client.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token.get_secret_value()}"})
    except httpx.HTTPError as exc:
        return warned(METRICS, f"GET {base}/metrics did not answer: {type(exc).__name__}", "read the web app's log")
    if response.status_code == 200 and "newsletter_" in response.text:
        return passed(METRICS, f"{base}/metrics answers the token with Prometheus text")
    if response.status_code == 401:
        return warned(METRICS, f"{base}/metrics refused the token (HTTP 401): the app runs with another "
                               "NEWSLETTER_METRICS_TOKEN", "restart the app with these settings")
    if response.status_code == 404:
        return warned(METRICS, f"{base}/metrics answered 404: the app runs without NEWSLETTER_METRICS_TOKEN, or a "
                               "proxy hides it", "restart the app with these settings; if the proxy hides /metrics "
                               "on purpose, let Prometheus scrape the app directly")
    return warned(METRICS, f"{base}/metrics answered HTTP {response.status_code} without Prometheus text",
                  "is NEWSLETTER_PUBLIC_URL the app's own address? read the web app's log")
