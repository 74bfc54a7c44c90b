"""Amazon SES v2 for the local wire server: SendEmail (raw), CreateEmailTemplate, SendBulkEmail, and the two
read-only calls ``newsletter doctor`` makes, GetAccount and GetEmailIdentity (answered from ``State.accounts``).

moto's SES v2 has SendEmail but neither templates nor SendBulkEmail, so body-once is checked here, against the
shapes of botocore's service model: every request's SigV4 signature is recomputed with botocore, templates are
expanded as Handlebars does it for what we use (``{{{raw}}}``, ``{{escaped}}``), and each destination gets a
``BulkEmailEntryResults`` status. Addresses in ``State.inactive`` are MESSAGE_REJECTED; those in
``SES_TRANSIENT`` get TRANSIENT_FAILURE once.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import uuid
from email import message_from_bytes, policy
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY_ID, SECRET, REGION = "AKIDWIRE", "wire-secret", "eu-west-1"
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/ses/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})")
_TAG = re.compile(r"\{\{\{(\w+)\}\}\}|\{\{(\w+)\}\}")
TEMPLATES: dict[str, dict[str, str]] = {}
SES_TRANSIENT: set[str] = set()
_LOCK = threading.Lock()

Answer = tuple[int, str, dict[str, str]]


DKIM_TOKENS = ("wiretoken1abcdefghij", "wiretoken2abcdefghij", "wiretoken3abcdefghij")


def route(handler: Any, path: str) -> Any:
    """The SES operation for ``path``, or None."""
    operations = {"/v2/email/outbound-emails": send_email, "/v2/email/templates": create_template,
                  "/v2/email/outbound-bulk-emails": send_bulk}
    operation = operations.get(path)
    return None if operation is None else (lambda body: _signed(handler, body, operation))


def read(handler: Any, path: str) -> Answer | None:
    """GetAccount or GetEmailIdentity (signature checked), or None when ``path`` is neither."""
    if handler.server.state.accounts.ses_send_only and path.startswith(("/v2/email/account", "/v2/email/identities/")):
        denied = _error(403, "AccessDeniedException", "User is not authorized to perform: ses:GetAccount")
        return _signed(handler, b"", lambda _h, _r, _s: denied)
    if path == "/v2/email/account":
        return _signed(handler, b"", lambda h, _r, _s: get_account(h))
    match = re.fullmatch(r"/v2/email/identities/([^/?]+)", path)
    if match is None:
        return None
    return _signed(handler, b"", lambda h, _r, _s: get_identity(h, match[1]))


def get_account(handler: Any) -> Answer:
    """GetAccount: sending status, sandbox or production, the quota (botocore's GetAccountResponse)."""
    accounts = handler.server.state.accounts
    return 200, json.dumps({
        "SendingEnabled": accounts.ses_sending, "ProductionAccessEnabled": accounts.ses_production,
        "EnforcementStatus": accounts.ses_enforcement, "DedicatedIpAutoWarmupEnabled": False,
        "SendQuota": {"Max24HourSend": 50000.0 if accounts.ses_production else 200.0,
                      "MaxSendRate": 14.0 if accounts.ses_production else 1.0, "SentLast24Hours": 120.0}}), {}


def get_identity(handler: Any, identity: str) -> Answer:
    """GetEmailIdentity: verified for sending, Easy DKIM's status and tokens, the MAIL FROM domain if any."""
    accounts = handler.server.state.accounts
    if identity not in accounts.domains:
        return _error(404, "NotFoundException", f"Email identity {identity} does not exist.")
    verified = accounts.domains[identity]
    body: dict[str, Any] = {
        "IdentityType": "DOMAIN", "FeedbackForwardingStatus": True, "VerifiedForSendingStatus": verified,
        "VerificationStatus": "SUCCESS" if verified else "PENDING",
        "DkimAttributes": {"SigningEnabled": True, "Status": accounts.ses_dkim, "Tokens": list(DKIM_TOKENS),
                           "SigningAttributesOrigin": "AWS_SES", "CurrentSigningKeyLength": "RSA_2048_BIT"},
        "Policies": {}, "Tags": []}
    if accounts.ses_mail_from:
        body["MailFromAttributes"] = {"MailFromDomain": accounts.ses_mail_from, "MailFromDomainStatus": "SUCCESS",
                                      "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"}
    return 200, json.dumps(body), {}


def _error(status: int, code: str, message: str) -> Answer:
    return status, json.dumps({"message": message}), {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"}


def _signed(handler: Any, body: bytes, operation: Any) -> Answer:
    match = _AUTH.fullmatch(handler.headers.get("Authorization", ""))
    if not match or match[1] != KEY_ID:
        return _error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    names = match[4].split(";")
    headers = {name: handler.headers.get(name, "") for name in names}
    request = AWSRequest(method=handler.command, url=f"http://{handler.headers['host']}{handler.path}", data=body,
                         headers=headers)
    request.context["timestamp"] = handler.headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(KEY_ID, SECRET), "ses", match[3])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != match[5] or "host" not in names or match[3] != REGION:
        return _error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
    return operation(handler, json.loads(body) if body else {}, len(body))  # type: ignore[no-any-return]


def send_email(handler: Any, request: dict[str, Any], size: int) -> Answer:
    """SendEmail with Content.Raw: one message, our MIME as given."""
    raw = base64.b64decode(request["Content"]["Raw"]["Data"])
    to = request["Destination"]["ToAddresses"][0]
    if to in handler.server.state.inactive:
        return _error(400, "MessageRejected", f"Address blacklisted: {to}")
    items = []
    if handler.server.state.keep:
        from tests.wire_server import Received

        mime = message_from_bytes(raw, policy=policy.default)
        tags = {t["Name"]: t["Value"] for t in request.get("EmailTags", [])}
        items.append(Received("ses", to, str(mime["Subject"]), mime.get_body(("html",)).get_content(),
                              mime.get_body(("plain",)).get_content(), _raw_headers(raw),
                              tags.get("delivery_id", "")))
    handler._record("ses", size, items) if items else _count(handler, size, 1)
    return 200, json.dumps({"MessageId": f"0100{uuid.uuid4().hex}-000000"}), {}


def create_template(handler: Any, request: dict[str, Any], size: int) -> Answer:
    """CreateEmailTemplate: a name taken once."""
    with _LOCK:
        if request["TemplateName"] in TEMPLATES:
            return _error(400, "AlreadyExistsException", f"Template {request['TemplateName']} already exists.")
        TEMPLATES[request["TemplateName"]] = request["TemplateContent"]
    _count(handler, size, 0)
    return 200, "{}", {}


def send_bulk(handler: Any, request: dict[str, Any], size: int) -> Answer:
    """SendBulkEmail: the template expanded per destination, one status per entry."""
    entries = request["BulkEmailEntries"]
    if not 1 <= len(entries) <= 50:
        return _error(400, "BadRequestException", "BulkEmailEntries: between 1 and 50 entries")
    template = TEMPLATES.get(request["DefaultContent"]["Template"]["TemplateName"])
    results, items = [], []
    for entry in entries:
        to = entry["Destination"]["ToAddresses"][0]
        with _LOCK:
            transient = to in SES_TRANSIENT
            SES_TRANSIENT.discard(to)
        if template is None:
            results.append({"Status": "TEMPLATE_NOT_FOUND", "Error": "Template does not exist"})
        elif transient:
            results.append({"Status": "TRANSIENT_FAILURE", "Error": "try again"})
        elif "@" not in to or to in handler.server.state.inactive:
            results.append({"Status": "MESSAGE_REJECTED", "Error": f"Address blacklisted: {to}"})
        else:
            results.append({"Status": "SUCCESS", "MessageId": f"0100{uuid.uuid4().hex}-000000"})
            items.append(_expanded(template, entry, to))
    if handler.server.state.keep:
        handler._record("ses", size, items)
    else:
        _count(handler, size, len(items))
    return 200, json.dumps({"BulkEmailEntryResults": results}), {}


def _expanded(template: dict[str, str], entry: dict[str, Any], to: str) -> Any:
    from tests.wire_server import Received

    values = json.loads(entry["ReplacementEmailContent"]["ReplacementTemplate"]["ReplacementTemplateData"])

    def fill(text: str) -> str:
        return _TAG.sub(lambda m: str(values.get(m[1])) if m[1] else html.escape(str(values.get(m[2]))), text)

    tags = {t["Name"]: t["Value"] for t in entry.get("ReplacementTags", [])}
    headers = {h["Name"]: h["Value"] for h in entry.get("ReplacementHeaders", [])}
    return Received("ses", to, fill(template["Subject"]), fill(template["Html"]), fill(template["Text"]), headers,
                    tags.get("delivery_id", ""))


def _count(handler: Any, size: int, recipients: int) -> None:
    state = handler.server.state
    with state.lock:
        state.recipients += recipients
        state.bytes += size


def _raw_headers(raw: bytes) -> dict[str, str]:
    """The header block as sent, unfolded but not decoded: what a mail client reads."""
    block = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n[ \t]+", " ", block)
    return dict(line.split(": ", 1) for line in unfolded.split("\r\n") if ": " in line)
