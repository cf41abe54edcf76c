"""End-to-end smoke check: python-wechaty 0.10.7 <-> gateway.mjs (mock puppet service).

Standalone script (not collected by pytest).  Run from the repo root:

    (cd tests/wechaty_gateway && npm ci)
    .venv/bin/python tests/wechaty_gateway/smoke_client.py

It starts the gateway, sets up 1 bot + 2 contacts + 1 room, starts a
python-wechaty bot against it, has a contact say '你好' in the room, receives
it in on_message, replies with room.say('收到你好') (and once more with a
mention), and checks that the gateway reports the echo of the bot's messages.
It also exercises room-topic / room-leave events, fail_sends, and a gateway
restart on the same port.  Exits 0 when every check passed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------
# gateway process driver (thread-based; safe to call from asyncio via to_thread)
# --------------------------------------------------------------------------


class GatewayError(RuntimeError):
    pass


class Gateway:
    """Drives `node gateway.mjs` over JSON lines on stdin/stdout."""

    def __init__(self, port: int = 0, token: str | None = None) -> None:
        args = ["node", str(HERE / "gateway.mjs"), "--port", str(port)]
        if token:
            args += ["--token", token]
        self.proc = subprocess.Popen(
            args,
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._replies: dict[Any, dict] = {}
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        hello = self.wait_event(lambda e: e.get("event") in ("listening", "fatal"), timeout=30)
        if hello["event"] != "listening":
            raise GatewayError(f"gateway failed to start: {hello}")
        self.port: int = hello["port"]
        self.token: str = hello["token"]
        self.endpoint = f"127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                print(f"[gateway stdout, not json] {line}", file=sys.stderr)
                continue
            with self._cond:
                if "event" in obj:
                    self.events.append(obj)
                else:
                    self._replies[obj.get("id")] = obj
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def cmd(self, cmd_name: str, /, _timeout: float = 30, **fields: Any) -> dict:
        """Send one command, wait for its reply; raise GatewayError if not ok."""
        name = cmd_name
        timeout = _timeout
        msg_id = next(self._ids)
        payload = {"id": msg_id, "cmd": name, **fields}
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(payload, ensure_ascii=False) + "\n")
            self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise GatewayError(f"no reply to {payload}")
                self._cond.wait(left)
            reply = self._replies.pop(msg_id)
        if not reply.get("ok"):
            raise GatewayError(f"{name} failed: {reply.get('error')}")
        return reply

    def wait_event(self, pred: Callable[[dict], bool], timeout: float = 10,
                   since: int = 0) -> dict:
        """The first event (from index `since` of `events`) matching pred; waits for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GatewayError("timed out waiting for gateway event")
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise GatewayError("gateway exited while waiting for event")
                self._cond.wait(min(left, 0.5))

    def stop(self) -> int:
        if self.proc.poll() is None:
            try:
                self.cmd("stop", _timeout=5)
            except (GatewayError, BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_pipes()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        self._reader.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# the smoke run
# --------------------------------------------------------------------------

SETUP = {
    "bot": {"id": "bot1", "name": "小助手"},
    "contacts": [{"id": "c1", "name": "董宝明"}, {"id": "c2", "name": "李四"}],
    "rooms": [{"id": "r1@chatroom", "topic": "福田街道指挥群", "members": ["bot1", "c1", "c2"]}],
}
ROOM = "r1@chatroom"

results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: Any = "") -> None:
    results.append((name, bool(ok), str(detail)))
    print(f"[{'PASS' if ok else 'FAIL'}] {name} {detail}", flush=True)


async def main() -> int:
    cache_dir = tempfile.mkdtemp(prefix="wechaty-cache-")
    # python-wechaty reads CACHE_DIR when `wechaty.plugin` is imported
    # (WechatySchedulerOptions.scheduler_db_file = f'{config.cache_dir}/job.db'),
    # so it must be set before `import wechaty`.
    os.environ["CACHE_DIR"] = cache_dir

    gw = await asyncio.to_thread(Gateway, 0)
    print(f"gateway listening on {gw.endpoint} token={gw.token}", flush=True)
    await asyncio.to_thread(gw.cmd, "setup", **SETUP)

    os.environ["WECHATY_PUPPET_SERVICE_ENDPOINT"] = gw.endpoint
    os.environ["WECHATY_PUPPET_SERVICE_TOKEN"] = gw.token

    # shim: wechaty 0.10.7's WechatyOptions has `puppet_options = PuppetOptions()`
    # as a dataclass default; Python 3.11 rejects unhashable defaults.
    from wechaty_puppet.schemas.puppet import PuppetOptions

    if PuppetOptions.__hash__ is None:
        PuppetOptions.__hash__ = object.__hash__  # type: ignore[method-assign]

    from wechaty import Contact, Message, Room, Wechaty, WechatyOptions

    logged_in = asyncio.Event()
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    room_events: asyncio.Queue[tuple] = asyncio.Queue()

    class SmokeBot(Wechaty):
        async def on_login(self, contact: Contact) -> None:
            print(f"python on_login: id={contact.contact_id} name={contact.name}", flush=True)
            logged_in.set()

        async def on_message(self, msg: Message) -> None:
            room = msg.room()
            talker = msg.talker()
            info = {
                "message_id": msg.message_id,
                "room_id": room.room_id if room else None,
                "room_topic": (await room.topic()) if room else None,
                "talker_id": talker.contact_id,
                "talker_name": talker.name,
                "text": msg.text(),
                "is_self": msg.is_self(),
                "mention_self": await msg.mention_self(),
                "mention_ids": list(msg.payload.mention_ids or []),
                "date": msg.date().isoformat(),
                "type": msg.type().name,
            }
            print(f"python on_message: {info}", flush=True)
            await inbox.put({**info, "_msg": msg, "_room": room})

        async def on_room_topic(
            self, room: Room, new_topic: str, old_topic: str, changer: Contact, date: Any
        ) -> None:
            print(
                f"python on_room_topic: room={room.room_id} {old_topic!r} -> {new_topic!r} "
                f"by {changer.contact_id} at {date}",
                flush=True,
            )
            await room_events.put(
                ("topic", room.room_id, new_topic, old_topic, changer.contact_id)
            )

        async def on_room_leave(
            self, room: Room, leavers: list[Contact], remover: Contact, date: Any
        ) -> None:
            ids = [c.contact_id for c in leavers]
            print(
                f"python on_room_leave: room={room.room_id} leavers={ids} "
                f"remover={remover.contact_id} at {date}",
                flush=True,
            )
            await room_events.put(("leave", room.room_id, ids, remover.contact_id))

    plugin_port = free_port()
    bot = SmokeBot(
        WechatyOptions(puppet_options=PuppetOptions(), host="127.0.0.1", port=plugin_port)
    )
    bot_task = asyncio.create_task(bot.start())  # bot.start() runs the event loop forever

    exit_code = 1
    try:
        await asyncio.wait_for(logged_in.wait(), 30)
        check("python on_login fired", True)
        reply = await asyncio.to_thread(gw.cmd, "wait_client", timeout_ms=20000)
        check("gateway wait_client", reply["bot"] == "bot1", reply)

        # 1. contact says 你好 in the room
        said = await asyncio.to_thread(gw.cmd, "say", contact="c1", room=ROOM, text="你好")
        got = await asyncio.wait_for(inbox.get(), 15)
        check(
            "python got 你好 with same id",
            got["message_id"] == said["message_id"]
            and got["text"] == "你好"
            and got["room_id"] == ROOM
            and got["talker_id"] == "c1"
            and got["is_self"] is False
            and got["mention_self"] is False,
            {k: v for k, v in got.items() if not k.startswith("_")},
        )

        # 2. reply with room.say -> message id returned, echo reported by gateway + python
        sent = await got["_room"].say("收到你好")
        check(
            "room.say returned a Message",
            sent is not None and bool(sent.message_id),
            sent and sent.message_id,
        )
        echo = await asyncio.to_thread(
            gw.wait_event, lambda e: e.get("event") == "message" and e.get("text") == "收到你好"
        )
        check(
            "gateway reported echo",
            echo["self"] is True
            and echo["talker"] == "bot1"
            and echo["room"] == ROOM
            and echo["id"] == sent.message_id,
            echo,
        )
        self_msg = await asyncio.wait_for(inbox.get(), 15)
        check(
            "python on_message also sees its own message (is_self)",
            self_msg["is_self"] is True and self_msg["message_id"] == sent.message_id,
            self_msg["message_id"],
        )

        # 3. mention the bot; reply mentioning the contact
        await asyncio.to_thread(
            gw.cmd, "say", contact="c2", room=ROOM, text="@小助手 在吗", mentions=["bot1"]
        )
        got = await asyncio.wait_for(inbox.get(), 15)
        check("mention_self true when mentioned", got["mention_self"] is True, got["mention_ids"])
        room = bot.Room.load(ROOM)
        sent2 = await room.say("在的", mention_ids=["c2"])
        echo2 = await asyncio.to_thread(
            gw.wait_event,
            lambda e: e.get("event") == "message" and e.get("id") == sent2.message_id,
        )
        check("room.say(mention_ids=) text and mentions", echo2["mentions"] == ["c2"], echo2)
        await asyncio.wait_for(inbox.get(), 15)  # python's own echo

        # 4. fail_sends -> gRPC error surfaces in python
        await asyncio.to_thread(gw.cmd, "fail_sends", count=1, message="发送消息过于频繁")
        try:
            await room.say("这条会失败")
            check("fail_sends raised", False, "no exception")
        except Exception as e:  # noqa: BLE001
            check(
                "fail_sends raised",
                "发送消息过于频繁" in str(e),
                f"{type(e).__module__}.{type(e).__name__}: {e}",
            )
        ok_again = await room.say("这条会成功")
        check(
            "send after fail_sends works", ok_again is not None, ok_again and ok_again.message_id
        )
        await asyncio.wait_for(inbox.get(), 15)

        # 5. room-topic and room-leave
        await asyncio.to_thread(gw.cmd, "topic", room=ROOM, topic="福田街道指挥群(新)")
        ev = await asyncio.wait_for(room_events.get(), 15)
        check(
            "on_room_topic",
            ev == ("topic", ROOM, "福田街道指挥群(新)", "福田街道指挥群", "c1"),
            ev,
        )
        await asyncio.to_thread(gw.cmd, "remove_member", room=ROOM, contact="bot1")
        ev = await asyncio.wait_for(room_events.get(), 15)
        check("on_room_leave (bot removed)", ev == ("leave", ROOM, ["bot1"], "c1"), ev)

        # 6. restart the gateway on the same port (kill -9, start again, setup again)
        port, token = gw.port, gw.token
        await asyncio.to_thread(gw.kill)
        t0 = time.monotonic()
        gw = await asyncio.to_thread(Gateway, port, token)
        check(
            "gateway restarted on same port",
            gw.port == port,
            f"port={gw.port} in {time.monotonic() - t0:.2f}s",
        )
        await asyncio.to_thread(gw.cmd, "setup", **SETUP)
        # python-wechaty's start() catches the dropped stream and sleeps 60 s
        # before restart(); don't wait for that: cancel it and start again.
        bot_task.cancel()
        # close the old gRPC channel (stop() also tells the new gateway to stop
        # the puppet, which is harmless: start() stops it first anyway)
        await bot.stop()
        # ... and login_listener() calls plugin_manager.start() ->
        # scheduler.start() again, which raises "Scheduler is already
        # running" and swallows the login event: shut the scheduler down
        # before starting the same Wechaty instance again.
        if bot._plugin_manager.scheduler.running:  # pylint: disable=protected-access
            bot._plugin_manager.scheduler.shutdown(wait=False)
        logged_in.clear()
        bot_task = asyncio.create_task(bot.start())
        await asyncio.wait_for(logged_in.wait(), 30)
        await asyncio.to_thread(gw.cmd, "wait_client")
        said = await asyncio.to_thread(gw.cmd, "say", contact="c2", room=ROOM, text="重启后")
        got = await asyncio.wait_for(inbox.get(), 15)
        check(
            "message after restart",
            got["message_id"] == said["message_id"] and got["text"] == "重启后",
            got["text"],
        )
        sent3 = await bot.Room.load(ROOM).say("重启后收到")
        echo3 = await asyncio.to_thread(
            gw.wait_event,
            lambda e: e.get("event") == "message" and e.get("id") == sent3.message_id,
        )
        check("echo after restart", echo3["self"] is True, echo3["text"])
        exit_code = 0 if all(ok for _, ok, _ in results) else 1
    except Exception as e:  # noqa: BLE001
        check("smoke run", False, repr(e))
    finally:
        try:
            await asyncio.wait_for(bot.stop(), 10)
        except Exception as e:  # noqa: BLE001
            print(f"bot.stop(): {e!r}", flush=True)
        bot_task.cancel()
        rc = await asyncio.to_thread(gw.stop)
        check("gateway stop exit code 0", rc == 0, rc)
        if rc != 0:
            exit_code = 1

    passed = sum(ok for _, ok, _ in results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return exit_code if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
