"""Fake WeCom, DingTalk and Feishu servers: real HTTP servers on 127.0.0.1 (a Starlette app
under uvicorn in a thread) that check what the platforms check — the signature and its
timestamp, the keyword, the body size, the per-minute and per-second limits and the penalty
after them — answer with the platforms' codes, and return any mapped error on demand.

Time is the test's FakeClock (read from the server thread); the limits count accepted
requests in sliding windows of that clock. Every message a fake accepts is kept in
`accepted` (the parsed body), so tests can read back exactly what a group would see."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.clock import FakeClock

HOUR = 3600.0


@dataclass
class Inject:
    """What the fake does with the next request instead of its normal handling."""

    code: int | None = None            # answer with this platform code
    status: int = 200                  # ... and this HTTP status
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0                  # accept the message, answer after this many seconds
    message: str = "injected"


@dataclass
class Window:
    """Accepted requests of one credential, for the rate limits."""

    times: deque[float] = field(default_factory=deque)
    penalty_until: float = 0.0

    def count(self, now: float, seconds: float) -> int:
        return sum(1 for t in self.times if now - t < seconds)


class FakePlatform:
    """What the three fakes share: state under a lock, injections, limits, the server."""

    per_minute: int = 20
    per_second: int | None = None
    penalty: float = 0.0
    max_body: int = 2048
    rate_code: int = 0

    def __init__(self, clock: FakeClock, *, keyword: str = "") -> None:
        self.clock = clock
        self.keyword = keyword
        self.lock = threading.Lock()
        self.injections: deque[Inject] = deque()
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self.windows: dict[str, Window] = {}
        self.ips_allowed = True
        # The last request as it came (path and query, body), for replaying it.
        self.last_request: tuple[str, bytes] = ("", b"")

    def now(self) -> float:
        return self.clock.now().timestamp()

    def inject(self, *injections: Inject) -> None:
        with self.lock:
            self.injections.extend(injections)

    def _next_injection(self) -> Inject | None:
        with self.lock:
            self.requests += 1
            return self.injections.popleft() if self.injections else None

    def over_limit(self, credential: str) -> bool:
        """Count this request against the credential's limits; True when it is refused
        (over a limit, or inside the penalty that going over started)."""
        now = self.now()
        with self.lock:
            w = self.windows.setdefault(credential, Window())
            while w.times and now - w.times[0] >= 60:
                w.times.popleft()
            if now < w.penalty_until:
                return True
            if (w.count(now, 60) >= self.per_minute
                    or (self.per_second is not None and w.count(now, 1) >= self.per_second)):
                w.penalty_until = now + self.penalty
                return True
            w.times.append(now)
            return False

    def keep(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.accepted.append(body)

    async def injected(self, inject: Inject, body: dict[str, Any] | None) -> Response | None:
        if inject.hang:
            # The message is posted, but the answer comes too late for the client.
            if body is not None:
                self.keep(body)
            await asyncio.sleep(inject.hang)
            return self.answer(0, "ok")
        if inject.code is None:
            return Response(status_code=inject.status, headers=inject.headers)
        return self.answer(inject.code, inject.message, status=inject.status,
                           headers=inject.headers)

    # How the platform names its error code and message in an answer.
    code_field = "errcode"
    message_field = "errmsg"

    def answer(self, code: int, message: str, *, status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {self.code_field: code, self.message_field: message}
        if self.code_field == "code":
            body["data"] = {}
        return JSONResponse(body, status_code=status, headers=headers)

    def routes(self) -> list[Route]:
        raise NotImplementedError

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Run the fake on a free port of 127.0.0.1; yields its base URL."""
        app = Starlette(routes=self.routes())

        async def with_fake(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, "fake": self}, receive, send)

        with serving(with_fake) as url:
            yield url


@contextmanager
def serving(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    # No access log (it would print the URL, key and all) and no logging configuration.
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            ws="none", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def closed_port() -> str:
    """A base URL where nothing listens (connection refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


async def read_json(request: Request, limit: int) -> tuple[dict[str, Any] | None, bool]:
    """The parsed body (None when not JSON) and whether it is over `limit` bytes."""
    raw = await request.body()
    fake = request.scope.get("fake")
    if isinstance(fake, FakePlatform):
        with fake.lock:
            fake.last_request = (str(request.url.path) + "?" + request.url.query, raw)
    try:
        body = json.loads(raw)
    except ValueError:
        return None, len(raw) > limit
    return (body if isinstance(body, dict) else None), len(raw) > limit


class FakeWecom(FakePlatform):
    """qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"""

    per_minute = 20
    penalty = 0.0

    def __init__(self, clock: FakeClock, *, key: str, keyword: str = "") -> None:
        super().__init__(clock, keyword=keyword)
        self.key = key

    def routes(self) -> list[Route]:
        return [Route("/cgi-bin/webhook/send", self.send, methods=["POST"])]

    async def send(self, request: Request) -> Response:
        body, _ = await read_json(request, 1 << 20)
        inject = self._next_injection()
        if inject is not None:
            return await self.injected(inject, body)
        if request.query_params.get("key") != self.key:
            return self.answer(93000, "invalid webhook url")
        if not self.ips_allowed:
            return self.answer(60020, "not allow to access from your ip")
        if body is None or body.get("msgtype") not in ("text", "markdown"):
            return self.answer(40008, "invalid message type")
        kind = body["msgtype"]
        content = (body.get(kind) or {}).get("content")
        limit = 2048 if kind == "text" else 4096
        if not isinstance(content, str) or len(content.encode("utf-8")) > limit:
            return self.answer(40058, "invalid Parameter, content exceed max length")
        if self.over_limit(self.key):
            return self.answer(45009, "api freq out of limit")
        self.keep(body)
        return self.answer(0, "ok")


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """base64 of HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}") (not URL-encoded:
    Starlette has decoded the query already)."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FakeDingtalk(FakePlatform):
    """oapi.dingtalk.com/robot/send?access_token=…&timestamp=…&sign=…"""

    per_minute = 20
    penalty = 600.0
    max_body = 20_000

    def __init__(self, clock: FakeClock, *, access_token: str, secret: str,
                 keyword: str = "") -> None:
        super().__init__(clock, keyword=keyword)
        self.access_token = access_token
        self.secret = secret

    def routes(self) -> list[Route]:
        return [Route("/robot/send", self.send, methods=["POST"])]

    async def send(self, request: Request) -> Response:
        body, too_big = await read_json(request, self.max_body - 1)
        inject = self._next_injection()
        if inject is not None:
            return await self.injected(inject, body)
        q = request.query_params
        if q.get("access_token") != self.access_token:
            return self.answer(300001, "token is not exist")
        if self.secret:
            ts = q.get("timestamp", "")
            if not ts.isdigit() or abs(self.now() * 1000 - int(ts)) > HOUR * 1000:
                return self.answer(310000, "sign not match, timestamp is expired")
            if not hmac.compare_digest(q.get("sign", ""), dingtalk_sign(self.secret, ts)):
                return self.answer(310000, "sign not match")
        if not self.ips_allowed:
            return self.answer(310000, "ip not in whitelist")
        if too_big:
            return self.answer(460101, "message too long, exceed 20000 bytes")
        if body is None or body.get("msgtype") not in ("text", "markdown"):
            return self.answer(40035, "缺少参数 json")
        text = (body["text"].get("content") if body["msgtype"] == "text"
                else body["markdown"].get("text")) or ""
        if self.keyword and self.keyword not in text:
            return self.answer(310000, "keywords not in content")
        if self.over_limit(self.access_token):
            return self.answer(130101, "send too fast, exceed 20 times per minute")
        self.keep(body)
        return self.answer(0, "ok")


def feishu_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FakeFeishuBot(FakePlatform):
    """open.feishu.cn/open-apis/bot/v2/hook/<id>, signature in the body."""

    per_minute = 100
    per_second = 5
    penalty = 0.0
    max_body = 20 * 1024
    code_field, message_field = "code", "msg"

    def __init__(self, clock: FakeClock, *, token: str, secret: str,
                 keyword: str = "") -> None:
        super().__init__(clock, keyword=keyword)
        self.token = token
        self.secret = secret
        # Answer frequency errors as HTTP 429 with the reset header (seconds) instead.
        self.http_429_reset: int | None = None

    def routes(self) -> list[Route]:
        return [Route("/open-apis/bot/v2/hook/{token}", self.send, methods=["POST"])]

    async def send(self, request: Request) -> Response:
        body, too_big = await read_json(request, self.max_body)
        inject = self._next_injection()
        if inject is not None:
            return await self.injected(inject, body)
        if request.path_params["token"] != self.token:
            return self.answer(19001, "param invalid: incoming webhook access token invalid",
                               status=400)
        if too_big:
            return self.answer(9499, "Bad Request: request body too large", status=400)
        if body is None:
            return self.answer(9499, "Bad Request", status=400)
        if self.secret:
            ts = str(body.get("timestamp", ""))
            if (not ts.isdigit() or abs(self.now() - int(ts)) > HOUR
                    or not hmac.compare_digest(str(body.get("sign", "")),
                                               feishu_sign(self.secret, ts))):
                return self.answer(19021, "sign match fail or timestamp is not within one "
                                   "hour from current time")
        if not self.ips_allowed:
            return self.answer(19022, "Ip Not Allowed")
        if self.keyword and self.keyword not in json.dumps(body.get("content"),
                                                           ensure_ascii=False):
            return self.answer(19024, "Key Words Not Found")
        if body.get("msg_type") not in ("text", "post"):
            return self.answer(9499, "Bad Request")
        if self.over_limit(self.token):
            if self.http_429_reset is not None:
                return self.answer(11232, "frequency limited", status=429,
                                   headers={"x-ogw-ratelimit-reset":
                                            str(self.http_429_reset)})
            return self.answer(11232, "frequency limited psm[lark.oapi.app_platform_runtime]")
        self.keep(body)
        return self.answer(0, "success")


class FakeFeishuApp(FakePlatform):
    """open.feishu.cn: tenant_access_token and im/v1/messages."""

    per_minute = 1000
    per_second = 50
    max_body = 150 * 1024
    group_per_second = 5
    token_seconds = 7200
    code_field, message_field = "code", "msg"

    def __init__(self, clock: FakeClock, *, app_id: str, app_secret: str) -> None:
        super().__init__(clock)
        self.app_id = app_id
        self.app_secret = app_secret
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.chats: set[str] = set()

    def routes(self) -> list[Route]:
        return [Route("/open-apis/auth/v3/tenant_access_token/internal", self.token,
                      methods=["POST"]),
                Route("/open-apis/im/v1/messages", self.send, methods=["POST"])]

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    async def token(self, request: Request) -> Response:
        body, _ = await read_json(request, 4096)
        if (body is None or body.get("app_id") != self.app_id
                or body.get("app_secret") != self.app_secret):
            return JSONResponse({"code": 10014, "msg": "app secret invalid"})
        with self.lock:
            self.tokens_issued += 1
            token = f"t-fake{self.tokens_issued:04d}{'x' * 24}"
            self.tokens[token] = self.now() + self.token_seconds
        return JSONResponse({"code": 0, "msg": "ok", "tenant_access_token": token,
                             "expire": self.token_seconds})

    def _group_busy(self, chat: str) -> bool:
        """Five a second per group."""
        now = self.now()
        with self.lock:
            w = self.windows.setdefault("chat:" + chat, Window())
            if w.count(now, 1) >= self.group_per_second:
                return True
            w.times.append(now)
            return False

    async def send(self, request: Request) -> Response:
        body, too_big = await read_json(request, self.max_body)
        inject = self._next_injection()
        if inject is not None:
            return await self.injected(inject, body)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        with self.lock:
            expires = self.tokens.get(token)
        if expires is None or self.now() >= expires:
            return self.answer(99991663, "Invalid access token for authorization.",
                               status=400)
        if request.query_params.get("receive_id_type") != "chat_id" or body is None:
            return self.answer(230001, "invalid request parameter", status=400)
        if too_big:
            return self.answer(230025, "message content too long", status=400)
        chat = str(body.get("receive_id", ""))
        if chat not in self.chats:
            return self.answer(230002, "Bot/User can NOT be out of the chat.", status=400)
        if self._group_busy(chat):
            return self.answer(230020, "This chat is being rate limited.", status=400)
        if self.over_limit("app"):
            return self.answer(99991400, "request trigger frequency limit", status=429,
                               headers={"x-ogw-ratelimit-reset": "1"})
        self.keep(body)
        return JSONResponse({"code": 0, "msg": "success",
                             "data": {"message_id": f"om_{len(self.accepted):06d}",
                                      "chat_id": chat}})
