"""AWS Signature Version 4 for httpx requests, signed by botocore's own signer.

botocore is the signer AWS keeps for its SDKs (boto3, the AWS CLI): canonical requests, credential scopes and
session tokens follow the service as it changes, where a reimplementation would drift. Only ``Host``,
``Content-Type`` and the ``X-Amz-*`` headers are signed, so whatever httpx adds (``Accept-Encoding``,
``Connection``, ``User-Agent``) cannot break the signature. Every attempt is signed anew: a retry carries a fresh
``X-Amz-Date``.

botocore is imported when a signer is made: it costs a process ~4 MB (urllib3 and its own tables), and every
process builds the composition root, which names SES among the providers, whatever provider it sends with.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

SIGNED = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


class SigV4(httpx.Auth):
    """Signs each request for ``service`` in ``region`` with the access key, secret and optional session token."""

    requires_request_body = True

    def __init__(self, *, access_key_id: str, secret_access_key: str, region: str, service: str = "ses",
                 session_token: str | None = None) -> None:
        from botocore.auth import SigV4Auth
        from botocore.credentials import Credentials

        self._signer = SigV4Auth(Credentials(access_key_id, secret_access_key, session_token), service, region)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add ``Authorization`` and ``X-Amz-Date`` (and the session token) computed over this exact request."""
        from botocore.awsrequest import AWSRequest

        headers = {"Host": request.headers["host"]}
        if "content-type" in request.headers:
            headers["Content-Type"] = request.headers["content-type"]
        signed = AWSRequest(method=request.method, url=str(request.url), data=request.content, headers=headers)
        self._signer.add_auth(signed)
        for name in SIGNED:
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request
