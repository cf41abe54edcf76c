"""The `tierbot` command: run, serve, demo, status, db, chain, invite, people, points, stats,
tokens, console, jobs, keys, purge, campaign, groups, channels."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from bot import channel_texts, pii
from bot.config import ConfigError, Settings, load_settings
from bot.store import StoreLockedError

log = logging.getLogger("tierbot")


def setup_logging(level: str, stream: TextIO | None = None) -> None:
    """Log to stderr with phone and ID numbers masked in every line (driver logs included)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(pii.MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Records are masked as they are made; handlers other libraries installed print masked
    # lines too (python-wechaty's loggers, made later, rely on the masked records).
    pii.mask_log_handlers()
    # Alembic narrates every start at INFO, aiosqlite every statement at DEBUG.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tierbot", description="The 前三后二 chain bot.")
    p.add_argument("--config", help="config file (default: $TIERBOT_CONFIG or ./config.toml)")
    p.add_argument("--database-url", help="overrides database_url")
    p.add_argument("--timezone", help="overrides timezone")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot and the admin API")
    run.add_argument("--transport", choices=["sim", "memory", "wechaty"])
    run.add_argument("--no-api", action="store_true", help="run the bot without the API")
    sub.add_parser("serve", help="run the admin API only")
    demo = sub.add_parser("demo", help="load the demo chain (if the store is empty) and chat")
    demo.add_argument("--fresh", action="store_true", help="start from an empty database file")
    demo.add_argument("--web", action="store_true",
                      help="the chat simulator in the browser instead of the console")
    demo.add_argument("--host", default="127.0.0.1",
                      help="--web: address to listen on (default 127.0.0.1: this machine only)")
    demo.add_argument("--port", type=int, default=8765, help="--web: port (default 8765)")

    sub.add_parser("status", help="the bot accounts: connected, logged in as, paused, errors, "
                                  "health")
    grp = sub.add_parser("groups", help="the groups' sending accounts (channels)")
    grp_sub = grp.add_subparsers(dest="groups_command", required=True)
    mv = grp_sub.add_parser("move", help="bind every group of one account to another (pending "
                                         "messages follow)")
    mv.add_argument("--from", dest="source", required=True, metavar="ACCOUNT")
    mv.add_argument("--to", dest="target", required=True, metavar="ACCOUNT")
    mv.add_argument("--node", default=None, help="only the groups in this node's subtree")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])

    ch = sub.add_parser("chain", help="import or show the chain")
    ch_sub = ch.add_subparsers(dest="chain_command", required=True)
    imp = ch_sub.add_parser("import", help="import a TOML, YAML or XLSX chain file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--preview", action="store_true",
                     help="show what the import would change (masked), apply nothing")
    imp.add_argument("--prune", action="store_true",
                     help="also remove roles (not tenants') and contact ids the file no "
                          "longer lists, at the nodes it lists (each removal recorded)")
    ch_sub.add_parser("show", help="print the tree with groups and commanders")

    wk = sub.add_parser("workers", help="enterprises' worker cards (一人一卡)")
    wk_sub = wk.add_subparsers(dest="workers_command", required=True)
    wimp = wk_sub.add_parser(
        "import", help="import worker cards from a CSV or XLSX sheet "
                       "(姓名, 手机, 来自, [身份证, 返岗日期, 车间, 居家观察, 隔离])")
    wimp.add_argument("file", type=Path)
    wimp.add_argument("--enterprise", required=True, help="the enterprise: node id or name")

    inv = sub.add_parser("invite", help="issue an invite code")
    inv.add_argument("--node", required=True, help="node id or exact name")
    who = inv.add_mutually_exclusive_group(required=True)
    who.add_argument("--role", help="commander, member, secretary, landlord, tenant, captain "
                                    "(or 指挥长, 组员, 书记, 房东, 租客, 铺长)")
    who.add_argument("--group", action="store_true", help="a code that binds a chat room")
    inv.add_argument("--days", type=int, help="days until it expires (default from config)")
    inv.add_argument("--channel", default="", help="a group invite: the channel that sends to "
                                                   "the room (default: the account that sees it)")
    inv.add_argument("--fallback", default="", help="a group invite: the channel failover "
                                                    "moves the room to")

    ppl = sub.add_parser("people", help="take roles or contact ids away (recorded)")
    ppl_sub = ppl.add_subparsers(dest="people_command", required=True)
    rem = ppl_sub.add_parser("remove", help="remove a person's roles (all, or at a node/role)")
    rem.add_argument("who", help="a contact id, or the person's exact registered name")
    rem.add_argument("--transport", default=None, help="of the contact id (default: config)")
    rem.add_argument("--node", help="node id or exact name (default: every node)")
    rem.add_argument("--role", help="only this role (commander, 指挥长, …)")
    rem.add_argument("--reason", required=True, help="why (recorded)")
    unl = ppl_sub.add_parser("unlink", help="a contact id no longer identifies its person")
    unl.add_argument("contact", help="the contact id")
    unl.add_argument("--transport", default=None, help="of the contact id (default: config)")
    unl.add_argument("--reason", required=True, help="why (recorded)")
    _people_privacy_parsers(ppl_sub)

    # points (issue 5)
    pts = sub.add_parser("points", help="the landlords' 12-point system")
    pts_sub = pts.add_subparsers(dest="points_command", required=True)
    exp = pts_sub.add_parser("export", help="a closed week's ranking, lists and rewards (CSV)")
    exp.add_argument("--week", required=True, help="ISO week, e.g. 2020-W09")
    exp.add_argument("--output", type=Path, help="file to write (default: stdout)")
    close = pts_sub.add_parser("close", help="close a week now (the Monday job, by hand)")
    close.add_argument("--week", required=True, help="ISO week, e.g. 2020-W09")
    close.add_argument("--dry-run", action="store_true", help="say what it would write only")

    st = sub.add_parser("stats", help="the figures of 统计")
    st_sub = st.add_subparsers(dest="stats_command", required=True)
    sexp = st_sub.add_parser("export", help="a subtree's figures of one day as XLSX")
    sexp.add_argument("--date", required=True, help="the day, e.g. 2020-02-21")
    sexp.add_argument("--node", required=True, help="a node id or exact name")
    sexp.add_argument("--output", type=Path, help="file to write (default: stats-DATE.xlsx)")
    xp = sub.add_parser("export", help="a subtree's XLSX report, recorded in the access log")
    xp.add_argument("report", choices=["stats", "lists", "watch"],
                    help="stats: 统计 of a day; lists: a closed week's lists; watch: the "
                         "people under home watch (masked)")
    xp.add_argument("--node", required=True, help="a node id or exact name")
    xp.add_argument("--date", help="the day (default: today)")
    xp.add_argument("--week", help="lists: the ISO week, e.g. 2020-W09 (default: last week)")
    xp.add_argument("--output", type=Path, help="file to write (default: its Chinese name)")
    # --- tokens (issue 10, access) ---
    tok = sub.add_parser("tokens", help="admin API tokens: create, list, revoke")
    tok_sub = tok.add_subparsers(dest="tokens_command", required=True)
    tcreate = tok_sub.add_parser("create", help="a new token for a person (shown once)")
    tcreate.add_argument("--person", required=True,
                         help="person id (#12 or 12), a contact id, or the exact registered name")
    tcreate.add_argument("--superuser", action="store_true",
                         help="sees the whole chain (operators), not only the person's subtrees")
    tcreate.add_argument("--days", type=int, help="days until it expires (default from config)")
    tcreate.add_argument("--label", default="", help="a note: what or who it is for")
    tok_sub.add_parser("list", help="every token: person, scope, state, expiry, last use")
    trevoke = tok_sub.add_parser("revoke", help="revoke a token at once")
    trevoke.add_argument("id", type=int, help="the token's id (see `tokens list`)")
    # --- end tokens ---
    # --- console (issue 14) ---
    con = sub.add_parser("console", help="web console logins: set-up links, superusers")
    con_sub = con.add_subparsers(dest="console_command", required=True)
    cinv = con_sub.add_parser("invite", help="a one-time link where a person sets a console "
                                             "password (a login is made on first use)")
    cinv.add_argument("--person", required=True,
                      help="the person: an id (12 or #12), a contact id or an exact name")
    cinv.add_argument("--login", default=None,
                      help="the login name for a new login (default: p<person id>)")
    csup = con_sub.add_parser("superuser", help="an operator's login that sees everything "
                                                "(the password is read from stdin)")
    csup.add_argument("name", help="the login name")
    # --- end console ---

    jobs = sub.add_parser("jobs", help="the fixed jobs: periods done, missed, run one now")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_sub.add_parser("list", help="each job: last period done, next run, missed periods")
    jrun = jobs_sub.add_parser("run", help="run a job now (its missed periods, or one period)")
    jrun.add_argument("name", help="daily-rollup, points-checks, points-week, shop-remind, "
                                    "shop-escalate, units-remind, units-escalate or "
                                    "retention-purge")
    jrun.add_argument("--period", help="one period (2020-02-21, 2020-02-21T20:00, 2020-W09)")
    jrun.add_argument("--dry-run", action="store_true",
                      help="do the work and roll it back: print what it would write")

    prg = sub.add_parser("purge", help="delete or anonymise personal records past retention")
    prg.add_argument("--dry-run", action="store_true",
                     help="only count what would go, per kind (nothing is changed)")
    camp = sub.add_parser("campaign", help="the epidemic campaign")
    camp_sub = camp.add_subparsers(dest="campaign_command", required=True)
    end = camp_sub.add_parser("end", help="purge every record whose only purpose was the "
                                          "campaign (tenants, stays, readings, …; see README)")
    end.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    end.add_argument("--dry-run", action="store_true", help="only count what would go")
    _keys_parser(sub)
    _channels_parser(sub)
    return p


# --- keys and personal data (issue 10: data at rest) -------------------------------------


def _keys_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="the keys of mobiles and ID numbers at rest")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("init", help="create the key file (keys.file, mode 0600)")
    rot = keys_sub.add_parser("rotate", help="add a new key and re-encrypt every number under "
                                             "it, in batches (run again to resume)")
    rot.add_argument("--batch", type=int, default=500, help="people per transaction")
    keys_sub.add_parser("status", help="the key ids, the active one, numbers left to rotate")


# --- official channels' credentials (issue 15) --------------------------------------------

# Where `channels add` reads the secret when stdin is a terminal (never from argv: argv shows
# in `ps`, shell history and process accounting).
SECRET_ENV = "TIERBOT_CHANNEL_SECRET"


def _channels_parser(sub: Any) -> None:
    chs = sub.add_parser("channels", help="official channels' credentials (stored encrypted)")
    chs_sub = chs.add_subparsers(dest="channels_command", required=True)
    add = chs_sub.add_parser(
        "add", help=f"store (or replace) a channel's secret, read from stdin or ${SECRET_ENV}: "
                    "a webhook URL, field=value lines, or a JSON object")
    add.add_argument("name", help="the channel's name, as in [[channels]]")
    add.add_argument("--kind", required=True,
                     help="wecom_robot | dingtalk_robot | feishu_bot | feishu_app | …")
    add.add_argument("--env", default=SECRET_ENV,
                     help=f"the variable holding the secret (default {SECRET_ENV})")
    chs_sub.add_parser("list", help="the stored credentials, masked")
    rm = chs_sub.add_parser("remove", help="delete a channel's stored secret")
    rm.add_argument("name")


def _read_secret(env: str) -> str:
    import os

    value = os.environ.get(env, "")
    if value:
        return value
    if not sys.stdin.isatty():
        return sys.stdin.read()
    raise ConfigError(channel_texts.Channel.NO_SECRET.format(env=env))


async def _channels(settings: Settings, args: argparse.Namespace) -> None:
    from bot.channels import registry
    from bot.channels.sources import KINDS as source_kinds
    from bot.services import credential

    texts_ = channel_texts.Channel
    if args.channels_command == "add":
        known = {*registry.kinds(), *source_kinds}
        if args.kind not in known:
            raise ConfigError(f"--kind: unknown kind {args.kind!r} (known: "
                              f"{', '.join(sorted(known))})")
        try:
            fields = credential.parse_secret(_read_secret(args.env))
        except credential.CredentialError as exc:
            raise ConfigError(f"channels add: {exc}") from None
        configured = {c.name: c.kind for c in settings.channels}
        configured.update((c.name, c.kind) for c in settings.sources)
        if configured.get(args.name, args.kind) != args.kind:
            raise ConfigError(f"channels add: [[channels]] {args.name!r} is of kind "
                              f"{configured[args.name]!r}")

        async def add(app: Any, session: Any) -> None:
            before = {c.name for c in await credential.listing(session)}
            shown = await credential.store(session, name=args.name, kind=args.kind,
                                           fields=fields, now=app.now())
            line = texts_.REPLACED if args.name in before else texts_.ADDED
            print(line.format(name=shown.name, kind=shown.kind, mask=shown.mask))

        await _with_store(settings, add)
        if args.name not in configured:
            print(f"note: add a [[channels]] (or [[sources]]) entry named {args.name!r} to use it",
                  file=sys.stderr)
    elif args.channels_command == "list":
        async def show(app: Any, session: Any) -> None:
            rows = await credential.listing(session)
            if not rows:
                print(texts_.NONE)
            for c in rows:
                at = c.updated_at.astimezone(settings.zone)
                print(texts_.LIST_LINE.format(name=c.name, kind=c.kind, mask=c.mask,
                                              at=f"{at:%Y-%m-%d %H:%M}"))

        await _with_store(settings, show)
    else:
        async def remove(app: Any, session: Any) -> None:
            if not await credential.remove(session, name=args.name):
                raise ConfigError(texts_.NOT_FOUND.format(name=args.name))
            print(texts_.REMOVED.format(name=args.name))

        await _with_store(settings, remove)


def _people_privacy_parsers(ppl_sub: Any) -> None:
    fgt = ppl_sub.add_parser("forget", help="anonymise a person everywhere (PIPL Art. 47), "
                                            "keeping counts; recorded")
    fgt.add_argument("number", help="the person's mobile or ID number")
    fgt.add_argument("--reason", required=True, help="why (recorded in the access log)")
    rev = ppl_sub.add_parser("reveal", help="show a person's full mobile or ID number "
                                            "(recorded in the access log)")
    rev.add_argument("who", help="a contact id, or the person's exact registered name")
    rev.add_argument("--transport", default=None, help="of the contact id (default: config)")
    rev.add_argument("--field", choices=["mobile", "id_number"], default="mobile")
    rev.add_argument("--reason", required=True, help="why (recorded in the access log)")


def _keys_init(settings: Settings) -> None:
    import os

    from bot import crypto

    path = Path(settings.keys.file)
    crypto.write_file(path, crypto.generate())
    print(f"created key file {path} (mode 0600)")
    print("back it up apart from the database: without it the stored mobiles and ID numbers "
          "cannot be read", file=sys.stderr)
    if settings.keys.env and os.environ.get(settings.keys.env):
        print(f"note: ${settings.keys.env} is set and wins over the file", file=sys.stderr)


def _key_file_keyring(settings: Settings) -> tuple[Path, Any]:
    import os

    from bot import crypto

    if settings.keys.env and os.environ.get(settings.keys.env):
        raise ConfigError(f"the keys come from ${settings.keys.env}: rotate them with a key "
                          "file (keys.file), then set the variable to its new text")
    return Path(settings.keys.file), crypto.load(settings.keys)


async def _keys_rotate(settings: Settings, batch: int) -> None:
    from bot import crypto
    from bot.services import credential, personal

    if batch < 1:
        raise ConfigError("--batch: at least 1")
    path, keyring = _key_file_keyring(settings)
    if keyring.rotating:
        print(f"resuming the rotation to key {keyring.active}")
    else:
        keyring = keyring.with_new_key()
        # The new key is on disk before any row uses it: an interruption loses nothing.
        crypto.write_file(path, keyring, replace=True)
        print(f"added key {keyring.active} (active); re-encrypting")

    async def work(app: Any) -> tuple[int, int]:
        people = await personal.rotate(app.sessions, keyring=keyring, batch=batch,
                                       progress=lambda n: print(f"  {n} people re-encrypted",
                                                                file=sys.stderr))
        # The official channels' credentials are sealed with the same keys.
        channels = await credential.rotate(app.sessions, keyring=keyring)
        return people, channels

    done, sealed = await _with_app(settings, work)
    crypto.write_file(path, keyring.rotated(), replace=True)
    print(f"rotation to {keyring.active} done: {done} people and {sealed} channel credentials "
          "re-encrypted; older keys stay in the file for older backups")


async def _keys_status(settings: Settings) -> None:
    from bot import crypto
    from bot.services import personal

    async def work(app: Any, session: Any) -> None:
        from bot.services import credential

        ring = crypto.current()
        left = await personal.pending_rotation(session, keyring=ring)
        channels_left = await credential.pending_rotation(session, keyring=ring)
        print(f"keys: {', '.join(sorted(ring.keys))}; active {ring.active}"
              + ("; rotation unfinished" if ring.rotating else ""))
        print(f"people with a number under an older key: {left}")
        print(f"channel credentials under an older key: {channels_left}")

    await _with_store(settings, work)


def _demo_keys(settings: Settings) -> None:
    """The demo makes its key file on first start (a real deployment runs `keys init`)."""
    from bot import crypto

    try:
        crypto.load(settings.keys)
    except crypto.MissingKeyError:
        crypto.write_file(Path(settings.keys.file), crypto.generate())
        print(f"demo: created key file {settings.keys.file}", file=sys.stderr)


async def _people_forget(settings: Settings, number: str, reason: str) -> None:
    from bot.services import personal

    if personal.kind_of(number) is None:
        raise ConfigError("forget: give an 11-digit mainland mobile or an 18-character ID "
                          "number")

    async def work(app: Any, session: Any) -> None:
        done = await personal.forget(session, number=number, who="cli", why=reason,
                                     now=app.now())
        if not done.person_ids:
            raise ConfigError(f"forget: nobody is registered with {pii.mask_text(number)}")
        print(f"forgot {len(done.person_ids)} people (#"
              + ", #".join(str(i) for i in done.person_ids)
              + f"); {done.scrubbed} rows scrubbed; recorded in the access log")

    await _with_store(settings, work)


async def _people_reveal(settings: Settings, args: argparse.Namespace) -> None:
    from bot.services import personal

    transport = args.transport or settings.transport

    async def work(app: Any, session: Any) -> None:
        person = await _person_named(session, args.who, transport=transport)
        value = await personal.reveal(session, person, args.field, who="cli", why=args.reason,
                                      now=app.now())
        print(value if value is not None else f"person #{person.id} has no {args.field}")

    await _with_store(settings, work)


async def _with_store(settings: Settings, work: Any) -> Any:
    from bot.app import build_app
    from bot.transports.memory import MemoryTransport

    # Admin commands are short: they do not take the running bot's file lock (SQLite's own
    # locking keeps the writes safe), so invites can be issued while the bot runs.
    app = build_app(settings, transport=MemoryTransport("cli"))
    try:
        from bot import store

        await store.upgrade(app.engine)
        async with app.session() as session, session.begin():
            return await work(app, session)
    finally:
        await app.engine.dispose()


async def _with_app(settings: Settings, work: Any) -> Any:
    """Like _with_store, for work that opens its own transactions (the jobs)."""
    from bot import store
    from bot.app import build_app
    from bot.transports.memory import MemoryTransport

    app = build_app(settings, transport=MemoryTransport("cli"))
    try:
        await store.upgrade(app.engine)
        return await work(app)
    finally:
        await app.engine.dispose()


class _ApiServer:
    """uvicorn's server without its own signal handling: it re-raises SIGTERM/SIGINT after
    its shutdown, which would kill the process before the bot has stopped."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Server(config)


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (systemctl stop, docker stop) and SIGINT (Ctrl-C) ask for a clean stop."""
    loop = asyncio.get_running_loop()

    def asked(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: still stopping (in-flight sends finish first)", sig.name)
            return
        log.warning("%s: stopping (no new sends; the one in flight finishes)", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, asked, sig)


async def _run(settings: Settings, *, api: bool, bot: bool) -> None:
    from bot.api import create_api
    from bot.app import build_app, running

    stop = asyncio.Event()
    _stop_on_signals(stop)
    app = build_app(settings)
    async with running(app) if bot else _store_only(app):
        # What start-up made (modules, compiled statements, settings) leaves the collector's
        # generations: a full collection then scans only what came later, and never holds
        # the event loop for long (issue 13).
        gc.collect()
        gc.freeze()
        if not api:
            await stop.wait()
        else:
            import uvicorn

            server = _ApiServer(uvicorn.Config(create_api(app), host=settings.api.host,
                                               port=settings.api.port, log_config=None))
            serving = asyncio.create_task(server.serve(), name="api")
            stopping = asyncio.create_task(stop.wait(), name="stop")
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            stopping.cancel()
            await serving
        log.info("stopping: scheduler, sender, transport, store")
    log.info("tierbot stopped")


class _store_only:
    def __init__(self, app: Any):
        self.app = app

    async def __aenter__(self) -> Any:
        await self.app.open_store()
        return self.app

    async def __aexit__(self, *exc: object) -> None:
        await self.app.stop()


async def _demo(settings: Settings) -> None:
    from bot.app import build_app, running
    from bot.clock import OffsetClock
    from bot.console import (
        DEMO_CHANNEL,
        bind_staff_to_channel,
        demo_channel,
        load_demo_chain,
        run_console,
    )

    # The simulated chat cannot be banned for speed: no pacing, so answers show at once.
    pacing = settings.pacing.model_copy(update={"min_gap_seconds": 0, "jitter_seconds": 0})
    # Tiers 1-3 on a simulated official channel beside the simulated WeChat of tiers 4-5.
    app = build_app(settings.model_copy(update={"transport": "sim", "pacing": pacing}),
                    clock=OffsetClock(), channels={DEMO_CHANNEL: demo_channel()})
    async with running(app):
        loaded = await load_demo_chain(app, units=True)
        print("demo chain loaded" if loaded else "using the chain already in the store")
        if loaded:
            moved = await bind_staff_to_channel(app)
            print(f"tiers 1-3 ({moved} groups) send through the simulated official channel "
                  f"{DEMO_CHANNEL!r}; tiers 4-5 through the simulated WeChat")
        await run_console(app)


async def _demo_web(settings: Settings, *, host: str, port: int) -> None:
    """demo --web: the demo bot with the chat simulator's page (bot/simulator)."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from bot import simulator
    from bot.app import build_app, running
    from bot.clock import OffsetClock
    from bot.console import load_demo_chain

    if host not in ("127.0.0.1", "localhost", "::1"):
        # Anyone who reaches the page speaks as anyone in the demo chain: no login here.
        log.warning("demo --web on %s: the simulator has no login; anyone who can reach "
                    "this address can use it", host)
    pacing = settings.pacing.model_copy(update={"min_gap_seconds": 0, "jitter_seconds": 0})
    app = build_app(settings.model_copy(update={"transport": "sim", "pacing": pacing}),
                    clock=OffsetClock())
    stop = asyncio.Event()
    _stop_on_signals(stop)
    async with running(app):
        loaded = await load_demo_chain(app, units=True)
        print("demo chain loaded" if loaded else "using the chain already in the store")
        sim = simulator.Simulator(app)
        web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        web.include_router(simulator.router(sim, base="/sim"))

        @web.get("/", include_in_schema=False)
        async def home() -> RedirectResponse:
            return RedirectResponse("/sim/")

        server = _ApiServer(uvicorn.Config(web, host=host, port=port, log_config=None))
        print(f"chat simulator: http://{host}:{port}/sim/  (Ctrl-C to stop)")
        serving = asyncio.create_task(server.serve(), name="simulator")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        stopping.cancel()
        await serving


def _progress_printer(stream: Any) -> Callable[[str, int, int], None]:
    """Progress of a long import on one terminal line (nothing when not a terminal)."""
    if not stream.isatty():
        return lambda stage, done, total: None

    def show(stage: str, done: int, total: int) -> None:
        figures = f" {done:,}/{total:,}" if total else f" {done:,}" if done else ""
        stream.write(f"\r\033[K{stage}{figures}" if stage else "\r\033[K")
        stream.flush()

    return show


async def _chain_preview(settings: Settings, path: Path) -> None:
    from bot import chainpreview

    async def work(app: Any, session: Any) -> None:
        shown = await chainpreview.preview(session, path, now=app.now())
        for line in shown.lines:
            where = f"{line.sheet} 第 {line.row} 行 " if line.row else ""
            print(f"{line.kind}\t{where}{line.text}")
        if shown.errors:
            raise ConfigError(f"{path}: {len(shown.errors)} errors, nothing would be imported")
        if not shown.lines:
            print("no changes")

    await _with_store(settings, work)


async def _chain_import(settings: Settings, path: Path, *, prune: bool = False) -> None:
    from bot import chainfile
    from bot.services import membership

    show = _progress_printer(sys.stderr)
    show("reading", 0, 0)
    spec = chainfile.load(path, progress=show)
    # The file's items live until this short process ends: out of the collector's walks (each
    # full collection during the import would visit all of them; about 1 s of 100,000 people).
    gc.freeze()

    async def work(app: Any, session: Any) -> None:
        counts = await chainfile.import_chain(session, spec, now=app.now(), progress=show)
        show("", 0, 0)
        print(f"imported {counts['nodes']} nodes, {counts['groups']} groups, "
              f"{counts['people']} people, {counts['roles']} roles")
        if prune:
            pruned = await membership.prune_chain(session, spec=spec, now=app.now())
            print(f"pruned {pruned['roles']} roles, {pruned['contacts']} contact ids")

    await _with_store(settings, work)


async def _workers_import(settings: Settings, path: Path, enterprise: str) -> None:
    from bot import workerfile
    from bot.domain import UserError
    from bot.services import chain, unit

    cards = workerfile.load(path)

    async def work(app: Any, session: Any) -> None:
        node = await chain.find_node(session, ref=enterprise)
        if node is None:
            raise workerfile.WorkerFileError(f"no node {enterprise!r}")
        try:
            new, updated = await unit.import_workers(
                session, enterprise=node, cards=cards, now=app.now(), zone=settings.zone,
                watch_days=settings.tenants.home_watch_days,
                fever_threshold=settings.tenants.fever_threshold)
        except UserError as exc:
            raise workerfile.WorkerFileError(f"{path}: {exc.text}") from None
        print(f"imported {new} new worker cards, updated {updated}")

    await _with_store(settings, work)


async def _chain_show(settings: Settings) -> None:
    from bot import chainfile

    async def work(app: Any, session: Any) -> None:
        print(await chainfile.render_tree(session))

    await _with_store(settings, work)


async def _invite(settings: Settings, node_ref: str, role_word: str | None, days: int | None,
                  channel: str = "", fallback: str = "") -> None:
    from bot.console import ROLE_WORDS
    from bot.services import chain
    from models import InviteKind

    role = ROLE_WORDS.get(role_word) if role_word else None
    if role_word and role is None:
        raise ConfigError(f"--role: unknown role {role_word!r}")
    if role_word and (channel or fallback):
        raise ConfigError("--channel/--fallback: only with --group")
    known = {c.name for c in settings.channels} | {a.name for a in settings.wechaty.accounts}
    for option, name in (("--channel", channel), ("--fallback", fallback)):
        if name and name not in known:
            raise ConfigError(f"{option}: no channel or account named {name!r} in the "
                              "configuration")

    async def work(app: Any, session: Any) -> None:
        node = await chain.find_node(session, ref=node_ref)
        if node is None:
            raise ConfigError(f"--node: no node {node_ref!r} (see `tierbot chain show`)")
        invite = await chain.issue_invite(
            session, node=node, kind=InviteKind.PERSON if role else InviteKind.GROUP, role=role,
            now=app.now(), ttl=timedelta(days=days or settings.invites.ttl_days),
            channel=channel, fallback=fallback)
        what = f"绑定 {invite.code}" if role else f"绑定群 {invite.code}"
        print(invite.code)
        print(f"# {node.name}: {role or 'group'}; expires "
              f"{invite.expires_at.astimezone(settings.zone):%Y-%m-%d %H:%M}; in chat: {what}",
              file=sys.stderr)

    await _with_store(settings, work)


async def _person_named(session: Any, who: str, *, transport: str) -> Any:
    """The person a contact id or an exact registered name (of one person) names."""
    from sqlalchemy import select

    from bot.services import people
    from models import Person

    person = await people.find_by_contact(session, transport=transport, contact_id=who)
    if person is None:
        named = list((await session.execute(
            select(Person).where(Person.name == who))).scalars())
        if len(named) > 1:
            raise ConfigError(f"{len(named)} people are named {who!r}: give a contact id")
        person = named[0] if named else None
    if person is None:
        raise ConfigError(f"no person {who!r} (a contact id or an exact name)")
    return person


async def _people(settings: Settings, args: argparse.Namespace) -> None:

    from bot.console import ROLE_WORDS
    from bot.services import chain, membership

    transport = args.transport or settings.transport
    role = ROLE_WORDS.get(args.role) if getattr(args, "role", None) else None
    if getattr(args, "role", None) and role is None:
        raise ConfigError(f"--role: unknown role {args.role!r}")

    async def work(app: Any, session: Any) -> None:
        if args.people_command == "unlink":
            person = await membership.unlink_contact(
                session, transport=transport, contact_id=args.contact, via="cli",
                reason=args.reason, now=app.now())
            if person is None:
                raise ConfigError(f"no contact {transport}:{args.contact}")
            print(f"unlinked {transport}:{args.contact} from person #{person.id}")
            return
        node = None
        if args.node:
            node = await chain.find_node(session, ref=args.node)
            if node is None:
                raise ConfigError(f"--node: no node {args.node!r} (see `tierbot chain show`)")
        person = await _person_named(session, args.who, transport=transport)
        removed = await membership.remove_by_admin(session, person=person, node=node,
                                                   role=role, reason=args.reason,
                                                   now=app.now())
        print(f"removed {len(removed)} roles of person #{person.id}: "
              + (", ".join(f"{h.role}@{h.node_id}" for h in removed) or "-"))

    await _with_store(settings, work)


async def _points_export(settings: Settings, week: str, output: Path | None) -> None:
    """points export: one CSV row per landlord of the closed week (names, never numbers)."""
    import csv

    from bot.services import points

    try:
        points.parse_week(week)
    except ValueError:
        raise ConfigError(f"--week: expected an ISO week like 2020-W09, got {week!r}") from None

    async def work(app: Any, session: Any) -> list[Any]:
        return await points.week_rows(session, week=week)

    rows = await _with_store(settings, work)
    if not rows:
        raise ConfigError(f"week {week} is not closed yet (the weekly job closes it on Monday)")
    stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        writer = csv.writer(stream)
        writer.writerow(["week", "scope", "rank", "landlord", "node", "score", "week_change",
                         "deducted", "list", "reward_points", "reward_yuan"])
        for r in rows:
            writer.writerow([r.week, r.scope, r.rank, r.landlord, r.node, r.score,
                             r.week_change, r.deducted, r.board, r.reward_points,
                             f"{r.reward_fen / 100:.2f}"])
    finally:
        if output:
            stream.close()


async def _jobs_list(settings: Settings) -> None:
    """jobs list: one block per fixed job."""
    from schedules import periods
    from schedules.jobs import fixed_jobs

    async def work(app: Any) -> None:
        zone = settings.zone
        for job in fixed_jobs(settings):
            st = await periods.state(app, job)
            last = (f"{st.last_period} (at {st.last_run_at.astimezone(zone):%Y-%m-%d %H:%M})"
                    if st.last_period and st.last_run_at else "never")
            nxt = f"{st.next_run_at.astimezone(zone):%Y-%m-%d %H:%M}" if st.next_run_at else "-"
            print(f"{job.name}: {job.doc}")
            print(f"  last done: {last}")
            print(f"  next run:  {nxt}")
            print(f"  missed:    {', '.join(st.missed) if st.missed else 'none'}")

    await _with_app(settings, work)


async def _jobs_run(settings: Settings, name: str, period: str | None, dry_run: bool) -> None:
    """jobs run: the job's missed periods in order, or the one period asked for."""
    from schedules import periods
    from schedules.jobs import fixed_job, fixed_jobs

    try:
        job = fixed_job(settings, name)
    except KeyError:
        names = ", ".join(j.name for j in fixed_jobs(settings))
        raise ConfigError(f"jobs run: no job {name!r} (one of: {names})") from None

    async def work(app: Any) -> None:
        if period is None:
            runs = await periods.catch_up(app, job, dry_run=dry_run)
        else:
            at = job.fire_of(period, settings.zone)
            if at > app.now():
                raise ConfigError(f"{name}: period {period} is not due until "
                                  f"{at.astimezone(settings.zone):%Y-%m-%d %H:%M}")
            ran = await periods.run_period(app, job, period=period, at=at, dry_run=dry_run)
            if ran is None:
                print(f"{name} {period}: already done, nothing to do")
                return
            runs = [ran]
        if not runs:
            print(f"{name}: nothing due")
        for ran in runs:
            verb = "would write" if dry_run else "done, wrote"
            print(f"{name} {ran.period}: {verb} {', '.join(str(n) for n in ran.counts)}")

    try:
        await _with_app(settings, work)
    except periods.PeriodError as exc:
        raise ConfigError(str(exc)) from None


# --- tokens (issue 10, access) ------------------------------------------------------------
async def _find_person(session: Any, ref: str, transport: str) -> Any:
    """A person by id (12 or #12), contact id, or exact unique name."""
    from sqlalchemy import select

    from bot.services import people
    from models import Person

    digits = ref.removeprefix("#")
    if digits.isdigit():
        found = await session.get(Person, int(digits))
        if found is not None:
            return found
    found = await people.find_by_contact(session, transport=transport, contact_id=ref)
    if found is not None:
        return found
    named = list((await session.execute(select(Person).where(Person.name == ref))).scalars())
    if len(named) > 1:
        raise ConfigError(f"{len(named)} people are named {ref!r}: give an id or a contact id")
    if not named:
        raise ConfigError(f"--person: no person {ref!r} (an id, a contact id or an exact name)")
    return named[0]


async def _tokens(settings: Settings, args: argparse.Namespace) -> None:
    """tokens create | list | revoke."""
    from bot.services import token as tokens

    async def work(app: Any, session: Any) -> None:
        now = app.now()
        zone = settings.zone
        if args.tokens_command == "create":
            days = args.days if args.days is not None else settings.api.token_days
            if days < 1:
                raise ConfigError("--days: at least 1")
            person = await _find_person(session, args.person, settings.transport)
            roots = await tokens.scope_roots(session, person_id=person.id)
            if not args.superuser and not roots:
                raise ConfigError(f"person #{person.id} holds no role that sees part of the "
                                  "chain: the token would see nothing (or give --superuser)")
            token, secret = await tokens.create_token(
                session, person=person, superuser=args.superuser, days=days,
                label=args.label, now=now)
            print(secret)
            sees = "everything (superuser)" if args.superuser else (
                "the subtrees of nodes " + ", ".join(str(r) for r in roots))
            print(f"# token {token.id} of person #{person.id}, sees {sees}; expires "
                  f"{token.expires_at.astimezone(zone):%Y-%m-%d %H:%M}. It is shown only "
                  "now: keep it safe.", file=sys.stderr)
        elif args.tokens_command == "list":
            for token, name in await tokens.list_tokens(session):
                used = (f"{token.last_used_at.astimezone(zone):%Y-%m-%d %H:%M}"
                        if token.last_used_at else "never")
                print(f"{token.id}\t{tokens.state_of(token, now)}\t#{token.person_id} "
                      f"{name}\t{'superuser' if token.superuser else 'subtree'}"
                      f"\texpires {token.expires_at.astimezone(zone):%Y-%m-%d %H:%M}"
                      f"\tlast used {used}\t{token.label}")
        else:
            revoked = await tokens.revoke_token(session, token_id=args.id, now=now)
            if revoked is None:
                raise ConfigError(f"no token {args.id} (see `tierbot tokens list`)")
            print(f"token {args.id} revoked")

    await _with_store(settings, work)
# --- end tokens ----------------------------------------------------------------------------
# --- console (issue 14) -------------------------------------------------------------------
async def _console_invite(settings: Settings, person_ref: str, login_name: str | None) -> None:
    """Print a one-time set-up link for a person's console login (made if missing)."""
    from sqlalchemy import select

    from bot.services import console as logins
    from bot.services import token as tokens
    from models import ConsoleLogin

    async def work(app: Any, session: Any) -> None:
        now = app.now()
        person = await _find_person(session, person_ref, settings.transport)
        login = (await session.execute(select(ConsoleLogin).where(
            ConsoleLogin.person_id == person.id, ConsoleLogin.superuser.is_(False))
            .order_by(ConsoleLogin.id))).scalars().first()
        if login is None:
            if not await tokens.scope_roots(session, person_id=person.id):
                raise ConfigError(f"person #{person.id} holds no role that sees part of the "
                                  "chain: the console would show them nothing")
            try:
                login = await logins.create_login(session, username=login_name or
                                                  f"p{person.id}", person_id=person.id,
                                                  superuser=False, now=now)
            except ValueError as exc:
                raise ConfigError(f"--login: {exc}") from None
        hours = settings.console.invite_hours
        token = await logins.issue_invite(session, login=login, hours=hours, now=now)
        print(f"{settings.console.base_url.rstrip('/')}/console/invite/{token}")
        print(f"# login name {login.username!r} of person #{person.id}; the link works once, "
              f"for {hours:g} hours (an earlier unused link of this login no longer works)",
              file=sys.stderr)

    await _with_store(settings, work)


async def _console_superuser(settings: Settings, name: str) -> None:
    """Make an operator's login, its password read from stdin (one line)."""
    from bot.services import console as logins

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        logins.check_password(password)
    except logins.PasswordRefused as exc:
        raise ConfigError(f"password from stdin: {exc}") from None

    async def work(app: Any, session: Any) -> None:
        try:
            login = await logins.create_login(session, username=name, person_id=None,
                                              superuser=True, now=app.now(),
                                              password=password)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        print(f"superuser login {login.username!r} created (id {login.id})")

    await _with_store(settings, work)
# --- end console ---------------------------------------------------------------------------
async def _counted(settings: Settings, title: str, purge: Any, *, dry_run: bool) -> None:
    """Run a purge in one transaction (rolled back in a dry run) and print its rows per kind,
    never a record."""
    async def work(app: Any) -> None:
        async with app.session() as session:
            async with session.begin() as tx:
                counts = await purge(session, app)
                if dry_run:
                    await tx.rollback()
        verb = "would delete or anonymise" if dry_run else "deleted or anonymised"
        print(f"{title} ({verb}, rows per kind):")
        for line in counts.lines():
            print(f"  {line}")

    await _with_app(settings, work)


async def _purge(settings: Settings, *, dry_run: bool) -> None:
    """purge: what is past its retention now."""
    from bot.services import retention

    await _counted(settings, "purge", lambda session, app: retention.purge_due(
        session, now=app.now(), settings=settings.retention), dry_run=dry_run)


CAMPAIGN_CONFIRM = "end campaign"


async def _campaign_end(settings: Settings, *, yes: bool, dry_run: bool,
                        ask: Callable[[str], str] = input) -> None:
    """campaign end: after confirmation, purge every record only the campaign needed."""
    from bot.services import retention

    if not yes and not dry_run:
        if not sys.stdin.isatty():
            raise ConfigError("campaign end: confirm on a terminal, or pass --yes")
        print("This deletes every tenant's stays and temperature readings, the tenants' names, "
              "numbers, contact ids and roles, inbound message rows, the text of delivered "
              "messages, report details and points evidence. The chain, its other people, "
              "notices, points totals and weekly standings and the daily roll-ups stay. "
              "It cannot be undone.", file=sys.stderr)
        if ask(f'Type "{CAMPAIGN_CONFIRM}" to go on: ').strip() != CAMPAIGN_CONFIRM:
            raise ConfigError("campaign end: not confirmed, nothing changed")

    await _counted(settings, "campaign end", lambda session, app: retention.end_campaign(
        session, now=app.now()), dry_run=dry_run)


def _status(settings: Settings) -> None:
    """Ask the running bot's API; without it, show what the database knows."""
    import dataclasses
    import json
    import urllib.error
    import urllib.request

    url = f"http://{settings.api.host}:{settings.api.port}/api/accounts"
    request = urllib.request.Request(url, headers={
        "Authorization": f"Bearer {settings.api.token}"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            rows = json.load(response)["items"]
        source = f"live, from {url}"
    except (urllib.error.URLError, OSError) as exc:
        from bot.app import BotApp
        from bot.transports.base import AccountState

        async def work(app: BotApp, session: Any) -> list[dict[str, Any]]:
            from bot.services import health

            states = [AccountState(name=a.name, connected=False)
                      for a in settings.wechaty.accounts] or [AccountState("", False)]
            return [dataclasses.asdict(a) | {"paused_until": a.paused_until.isoformat()
                                             if a.paused_until else None,
                                             "since": a.since.isoformat() if a.since else None,
                                             "problems": list(a.problems)}
                    for a in await health.account_status(session, states=states,
                                                         now=app.now())]

        rows = asyncio.run(_with_store(settings, work))
        source = f"bot not reachable at {url} ({getattr(exc, 'reason', exc)}): database only"
    print(f"accounts ({source}):")
    for row in rows:
        state = "connected" if row["connected"] else "not connected"
        print(f"  {row['name'] or '(default)'}: {state}"
              + (f" as {row['logged_in_as']}" if row["logged_in_as"] else "")
              + (f", paused until {row['paused_until']}" if row["paused_until"] else "")
              + f", {row['pending']} waiting"
              + (f", last error: {row['last_error']}" if row["last_error"] else "")
              + _health_line(row))


def _health_line(row: dict[str, Any]) -> str:
    """The watchdog's part of a status line: health, problems, since."""
    health = row.get("health") or "unknown"
    problems = ", ".join(row.get("problems") or [])
    return (f"; health {health}" + (f" ({problems})" if problems else "")
            + (f" since {row['since']}" if row.get("since") else ""))


def configured_accounts(settings: Settings) -> list[str]:
    """The sending accounts the configuration names."""
    names = [a.name for a in settings.wechaty.accounts]
    return names + [n for n in settings.watchdog.test_rooms if n not in names]


async def _groups_move(settings: Settings, source: str, target: str, node_ref: str | None
                       ) -> None:
    """groups move: rebind the groups of one account to another, by hand."""
    from bot import health_texts
    from bot.services import chain, failover, watchdog

    if source == target:
        raise ConfigError(health_texts.SAME_ACCOUNT)

    async def work(app: Any, session: Any) -> str:
        known = await watchdog.watched_accounts(session, configured=configured_accounts(
            settings))
        for name in (source, target):
            if name not in known:
                raise ConfigError(health_texts.UNKNOWN_ACCOUNT.format(
                    name=name, known=", ".join(repr(k) for k in known) or "-"))
        node_id = None
        if node_ref is not None:
            node = await chain.find_node(session, ref=node_ref)
            if node is None:
                raise ConfigError(health_texts.NO_NODE.format(ref=node_ref))
            node_id = node.id
        default = settings.wechaty.accounts[0].name if settings.wechaty.accounts else ""
        moved = await failover.move_groups(session, source=source, target=target,
                                           node_id=node_id, default=default)
        return health_texts.MOVED.format(groups=moved.groups, rows=moved.rows,
                                         source=health_texts.account_label(source),
                                         target=health_texts.account_label(target))

    print(await _with_store(settings, work))


async def _stats_export(settings: Settings, day_text: str, node_ref: str,
                        output: Path | None) -> Path:
    """stats export: the XLSX report of a subtree and day."""
    return await _export(settings, "stats", node_ref=node_ref, day_text=day_text, week=None,
                         output=output, default_name="stats-{key}.xlsx")


async def _export(settings: Settings, report: str, *, node_ref: str, day_text: str | None,
                  week: str | None, output: Path | None, default_name: str | None = None
                  ) -> Path:
    """export: one report of a subtree through the export service (recorded as "cli")."""
    from datetime import date

    from bot.domain import UserError
    from bot.services import chain, export, stats

    day = None
    if day_text is not None:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise ConfigError(f"--date: expected a day like 2020-02-21, got {day_text!r}"
                              ) from None
        if not stats.day_in_range(day):
            raise ConfigError(f"--date: the day must be between {stats.FIRST_DAY} and "
                              f"{stats.LAST_DAY}, got {day_text!r}")

    async def work(app: Any, session: Any) -> Path:
        root = await chain.find_node(session, ref=node_ref)
        if root is None:
            raise ConfigError(f"--node: no node {node_ref!r}")
        try:
            done = await export.export(
                session, report=export.Report(report), root=root,
                by=export.Requester("cli", superuser=True),
                day=day or app.now().astimezone(settings.zone).date(), week=week,
                zone=settings.zone, now=app.now())
        except UserError as exc:
            raise ConfigError(exc.text) from None
        path = output or Path(default_name.format(key=done.key) if default_name
                              else done.filename)
        path.write_bytes(done.data)
        return path

    path: Path = await _with_store(settings, work)
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        overrides: dict[str, Any] = {"database_url": args.database_url,
                                     "timezone": args.timezone, "log_level": args.log_level}
        if args.command == "run":
            overrides["transport"] = args.transport
        settings = load_settings(args.config, **overrides)
        setup_logging(settings.log_level)
        if args.command == "demo" and args.fresh and settings.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(settings.sqlite_path) + suffix).unlink(missing_ok=True)
        match args.command:
            case "run":
                asyncio.run(_run(settings, api=not args.no_api, bot=True))
            case "serve":
                asyncio.run(_run(settings, api=True, bot=False))
            case "demo":
                _demo_keys(settings)
                if args.web:
                    asyncio.run(_demo_web(settings, host=args.host, port=args.port))
                else:
                    asyncio.run(_demo(settings))
            case "status":
                _status(settings)
            case "groups":
                asyncio.run(_groups_move(settings, args.source, args.target, args.node))
            case "db":
                asyncio.run(_with_store(settings, lambda app, session: asyncio.sleep(0)))
                print("database is at the latest schema")
            case "chain" if args.chain_command == "import" and args.preview:
                asyncio.run(_chain_preview(settings, args.file))
            case "chain" if args.chain_command == "import":
                asyncio.run(_chain_import(settings, args.file, prune=args.prune))
            case "people" if args.people_command == "forget":
                asyncio.run(_people_forget(settings, args.number, args.reason))
            case "people" if args.people_command == "reveal":
                asyncio.run(_people_reveal(settings, args))
            case "people":
                asyncio.run(_people(settings, args))
            case "keys" if args.keys_command == "init":
                _keys_init(settings)
            case "keys" if args.keys_command == "rotate":
                asyncio.run(_keys_rotate(settings, args.batch))
            case "keys":
                asyncio.run(_keys_status(settings))
            case "channels":
                asyncio.run(_channels(settings, args))
            case "workers":
                asyncio.run(_workers_import(settings, args.file, args.enterprise))
            case "chain":
                asyncio.run(_chain_show(settings))
            case "invite":
                asyncio.run(_invite(settings, args.node, args.role, args.days, args.channel,
                                    args.fallback))
            case "points" if args.points_command == "close":
                asyncio.run(_jobs_run(settings, "points-week", args.week, args.dry_run))
            case "points":
                asyncio.run(_points_export(settings, args.week, args.output))
            case "stats":
                asyncio.run(_stats_export(settings, args.date, args.node, args.output))
            case "export":
                asyncio.run(_export(settings, args.report, node_ref=args.node,
                                    day_text=args.date, week=args.week, output=args.output))
            case "tokens":
                asyncio.run(_tokens(settings, args))
            case "console" if args.console_command == "invite":
                asyncio.run(_console_invite(settings, args.person, args.login))
            case "console":
                asyncio.run(_console_superuser(settings, args.name))
            case "jobs" if args.jobs_command == "list":
                asyncio.run(_jobs_list(settings))
            case "jobs":
                asyncio.run(_jobs_run(settings, args.name, args.period, args.dry_run))
            case "purge":
                asyncio.run(_purge(settings, dry_run=args.dry_run))
            case "campaign":
                asyncio.run(_campaign_end(settings, yes=args.yes, dry_run=args.dry_run))
    except (ConfigError, StoreLockedError) as exc:
        print(f"tierbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from bot.chainfile import ChainFileError

        if isinstance(exc, ChainFileError):
            print(f"tierbot: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
