"""What the official-robot channels share: one small httpx client per channel, the
classification of transport failures and HTTP statuses into `SendResult`s, the platforms'
error-code tables, and keeping credentials out of logs, exceptions, reprs and details.

httpx logs every request's full URL at INFO ("HTTP Request: POST https://…?key=…"), and the
WeCom key, the DingTalk access token and the Feishu hook id are in the URL: a filter on the
"httpx" logger replaces every registered credential (and any key=/access_token=/sign= value
and /hook/ id) before a handler sees the record. httpcore's DEBUG traces name the host, the
method and the response headers, never the URL's query or a request header; they are
filtered the same way all the same."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from bot.channels.base import Capabilities, Limits, Outcome, Payload, Rendering, SendResult
from bot.clock import Clock, SystemClock

log = logging.getLogger(__name__)

# Seconds to wait after a failure the platform gave no time for (5xx, no connection).
DEFAULT_RETRY_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 10.0
_DETAIL_CHARS = 160
MASK = "***"

_QUERY_SECRET = re.compile(r"(?i)\b(key|access_token|sign|token)=([^&\s\"']+)")
_HOOK_PATH = re.compile(r"(/hook/)([^/?\s\"']+)")


class _Secrets:
    """Every credential value a channel in this process holds, for redaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            # Short values ("1", "") would mask ordinary text; real keys are long.
            self._values.update(v for v in values if len(v) >= 6)

    def scrub(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", text)
        return _HOOK_PATH.sub(lambda m: f"{m.group(1)}{MASK}", text)


SECRETS = _Secrets()


class RedactingFilter(logging.Filter):
    """Replaces credentials in a record's message (formatted first, so URLs passed as
    arguments are covered) before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own handling
            return True
        cleaned = SECRETS.scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def _install_filter() -> None:
    # A logger's filter sees only the records logged on that logger, not its children's.
    for name in ("httpx", "httpcore", "httpcore.connection", "httpcore.http11",
                 "httpcore.http2", "httpcore.proxy", __name__):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


_install_filter()


def scrub(text: str) -> str:
    """A text safe for logs and `SendResult.detail`: credentials masked, shortened."""
    return SECRETS.scrub(text)[:_DETAIL_CHARS]


@dataclass(frozen=True, slots=True)
class CodeRule:
    """What one platform error code means for the sender."""

    outcome: Outcome
    # RETRY_AFTER: seconds to wait (None: the channel's penalty, else the default).
    retry_after: float | None = None
    # The whole credential is rate-limited (pause it), not only this group.
    rate_limited: bool = False
    meaning: str = ""


def retry(meaning: str, seconds: float | None = None, *, rate_limited: bool = False
          ) -> CodeRule:
    return CodeRule(Outcome.RETRY_AFTER, seconds, rate_limited, meaning)


def permanent(meaning: str) -> CodeRule:
    return CodeRule(Outcome.PERMANENT, None, False, meaning)


def result_for(code: int | str, message: str, rule: CodeRule | None, *,
               penalty: float, http_status: int = 200) -> SendResult:
    """The result of a platform's error code (`rule` None: an unknown code; the platform
    refused the message, so a person has to look)."""
    detail = scrub(f"{code} {message}".strip())
    if rule is None:
        if http_status >= 500:
            return SendResult(Outcome.RETRY_AFTER, retry_after=DEFAULT_RETRY_SECONDS,
                              code=str(code), detail=detail)
        return SendResult(Outcome.PERMANENT, code=str(code), detail=detail)
    if rule.outcome is Outcome.RETRY_AFTER:
        wait = rule.retry_after if rule.retry_after is not None else (
            penalty or DEFAULT_RETRY_SECONDS)
        return SendResult(Outcome.RETRY_AFTER, retry_after=wait, code=str(code),
                          detail=detail, rate_limited=rule.rate_limited)
    return SendResult(rule.outcome, code=str(code), detail=detail)


def classify_exception(exc: httpx.HTTPError | httpx.InvalidURL) -> SendResult:
    """A transport failure: before the request left (no connection, DNS, pool) nothing was
    sent, so retry; once it may have been written (write/read timeout, connection dropped
    mid-exchange) the platform may have posted it: unknown."""
    name = type(exc).__name__
    detail = scrub(f"{name}: {exc}".rstrip(": "))
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        # The configured base URL or credential cannot make a URL: a person must fix it.
        return SendResult(Outcome.PERMANENT, code="bad-url", detail=detail)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                  | httpx.ProxyError):
        return SendResult(Outcome.RETRY_AFTER, retry_after=DEFAULT_RETRY_SECONDS,
                          code="not-sent", detail=detail)
    if isinstance(exc, httpx.TransportError):
        # WriteTimeout, ReadTimeout, WriteError, ReadError, RemoteProtocolError (the server
        # closed without answering): part or all of the request left.
        return SendResult(Outcome.UNKNOWN, code="no-answer", detail=detail)
    return SendResult(Outcome.UNKNOWN, code="http-error", detail=detail)


def header_seconds(response: httpx.Response, *names: str) -> float | None:
    """Seconds from the first of `names` present in the response's headers (an integer or
    a decimal number of seconds), or None."""
    for name in names:
        value = response.headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value.strip())
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def classify_status(response: httpx.Response, *, reset_headers: tuple[str, ...] = ()
                    ) -> SendResult | None:
    """The result an HTTP status decides by itself (429, 5xx), or None to read the body."""
    status = response.status_code
    if status == 429:
        wait = header_seconds(response, *reset_headers, "retry-after")
        return SendResult(Outcome.RETRY_AFTER,
                          retry_after=wait if wait is not None else DEFAULT_RETRY_SECONDS,
                          code="http-429", detail="HTTP 429 too many requests",
                          rate_limited=True)
    if status >= 500:
        wait = header_seconds(response, "retry-after")
        return SendResult(Outcome.RETRY_AFTER,
                          retry_after=wait if wait is not None else DEFAULT_RETRY_SECONDS,
                          code=f"http-{status}", detail=f"HTTP {status}")
    return None


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def from_webhook(url: str, field: str, where: str) -> tuple[str, str]:
    """(scheme://host of the URL, the credential in it): the query parameter `field`, or the
    last path segment."""
    parts = urlsplit(url.strip())
    if where == "query":
        value = (parse_qs(parts.query).get(field) or [""])[0]
    else:
        value = unquote(parts.path.rstrip("/").rpartition("/")[2])
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return origin, value


def within(limits: Limits | None, platform: Limits) -> Limits:
    """Configured limits, held to the platform's: configuration may only lower a rate or a
    size and only lengthen a penalty."""
    if limits is None:
        return platform

    def lower(mine: int | None, theirs: int | None) -> int | None:
        return theirs if mine is None else mine if theirs is None else min(mine, theirs)

    return replace(
        limits,
        per_minute=min(limits.per_minute, platform.per_minute),
        per_second=lower(limits.per_second, platform.per_second),
        per_group_per_second=lower(limits.per_group_per_second, platform.per_group_per_second),
        max_body_bytes=min(limits.max_body_bytes, platform.max_body_bytes),
        penalty_seconds=max(limits.penalty_seconds, platform.penalty_seconds),
        avoid=tuple(dict.fromkeys((*platform.avoid, *limits.avoid))))


ROBOT_CAPABILITIES = Capabilities(receive=False, ack_in_chat=False, mention_user=True,
                                  mention_all=True, markdown=True, cards=False)


class HttpChannel:
    """An outbound channel over HTTPS: holds the credential (never shown), a client, a clock.

    Subclasses set `kind`, `capabilities`, `default_limits`, `default_base_url`,
    `credential_keys` and implement `render` and `send`."""

    kind: str
    capabilities: Capabilities
    default_limits: ClassVar[Limits]
    default_base_url: ClassVar[str]
    # Keys the credential must hold (any one of the tuples inside).
    credential_keys: ClassVar[tuple[tuple[str, ...], ...]]
    # The credential field a full webhook URL ("webhook", as `tierbot channels add` stores a
    # bare value) carries, and where: ("key", "query") or ("token", "path") (the last path
    # segment). ("", "") for channels without a webhook.
    webhook_field: ClassVar[tuple[str, str]] = ("", "")

    def __init__(self, name: str, credential: Mapping[str, str], *,
                 limits: Limits | None = None, keyword: str = "",
                 base_url: str | None = None, client: httpx.AsyncClient | None = None,
                 clock: Clock | None = None) -> None:
        if not any(all(credential.get(k) for k in keys) for keys in self.credential_keys):
            wanted = " or ".join("+".join(keys) for keys in self.credential_keys)
            # Names the keys only: the values are secret.
            raise ValueError(f"{self.kind} channel {name!r} needs credential {wanted}")
        self.name = name
        self._credential = dict(credential)
        SECRETS.add(self._credential.values())
        self.limits = within(limits, self.default_limits)
        self.keyword = keyword
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        field, where = self.webhook_field
        if field and not self._credential.get(field) and self._credential.get("webhook"):
            origin, value = from_webhook(self._credential["webhook"], field, where)
            if not value:
                raise ValueError(f"{self.kind} channel {name!r}: the webhook URL has no {field}")
            self._credential[field] = value
            if base_url is None and origin:
                self.base_url = origin
        self._client = client
        self._owns_client = client is None
        self.clock: Clock = clock or SystemClock()
        self.configure()

    def configure(self) -> None:
        """A subclass's own setup after the common one (parse the credential, make caches)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} kind={self.kind}>"

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def render(self, rendering: Rendering) -> list[Payload]:
        raise NotImplementedError

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        raise NotImplementedError

    async def post(self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None
                   ) -> httpx.Response | SendResult:
        """POST a JSON body; a transport failure comes back classified, never raised."""
        try:
            return await self.client.post(
                url, content=body,
                headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            result = classify_exception(exc)
            log.warning("channel %s: %s (%s)", self.name, result.outcome.value, result.detail)
            return result

    def settle(self, result: SendResult) -> SendResult:
        """Log a send's result (name, outcome, code: never the body or the credential)."""
        if result.outcome is Outcome.DELIVERED:
            log.debug("channel %s: delivered", self.name)
        else:
            log.warning("channel %s: %s %s (%s)", self.name, result.outcome.value,
                        result.code, result.detail)
        return result


def classify_response(response: httpx.Response, table: Mapping[int, CodeRule], *,
                      penalty: float, code_fields: tuple[str, ...] = ("errcode",),
                      message_fields: tuple[str, ...] = ("errmsg",),
                      reset_headers: tuple[str, ...] = ()) -> SendResult:
    """A platform's answer: HTTP 429/5xx by status, else its JSON error code (the first of
    `code_fields` present) looked up in `table`; 0 is success."""
    decided = classify_status(response, reset_headers=reset_headers)
    if decided is not None:
        return decided
    body = json_body(response)
    field = next((f for f in code_fields if body is not None and f in body), None)
    if body is None or field is None:
        if response.is_success:
            # 2xx but not the platform's answer (a proxy page?): it may have been posted.
            return SendResult(Outcome.UNKNOWN, code=f"http-{response.status_code}",
                              detail="answer without an error code")
        return SendResult(Outcome.PERMANENT, code=f"http-{response.status_code}",
                          detail=f"HTTP {response.status_code}")
    try:
        code = int(body.get(field) or 0)
    except (TypeError, ValueError):
        return SendResult(Outcome.UNKNOWN, code="bad-answer", detail="error code not a number")
    if code == 0 and response.is_success:
        return SendResult(Outcome.DELIVERED)
    message = next((str(body[f]) for f in message_fields if f in body), "")
    return result_for(code, message, table.get(code), penalty=penalty,
                      http_status=response.status_code)
