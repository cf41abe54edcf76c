#!/usr/bin/env python
"""Chain import at city scale: generate a chain file (TOML, YAML and XLSX) and import it.

    .venv/bin/python bench/import.py [--people 100000] [--formats toml,yaml,xlsx]
                                     [--db-url postgresql://...] [--keep DIR]

The chain: one subdistrict, 20 communities, 200 teams (each with a landlords' group), and
`--people` landlords, each with a mobile, a contact id, a tier-5 node and its group: 10,000
groups for 100,000 people when --groups-per-landlord is 0.1 (the default: one landlord in ten
has a bound tenants' group). Each format is imported into a fresh database in a child
process (`tierbot chain import`'s code path: load, then import_chain in one transaction), so
each peak RSS is that import's own. "DB CPU" is the PostgreSQL backend's CPU time during the
import (a local server; "-" on SQLite, whose work is in "CPU"). Prints a table; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bulk  # bench/bulk.py: the throwaway keys and a fresh schema
import yaml

from bot import chainfile, store
from tests.xlsx import write_xlsx

COMMUNITIES, TEAMS = 20, 200
ROLES = ("commander", "member", "secretary", "landlord", "tenant", "captain")


def chain_dict(people: int, group_every: int) -> dict[str, object]:
    """The chain as the dict a TOML or YAML file holds."""
    persons: list[dict[str, object]] = [{"key": "cmd", "name": "街道指挥长",
                                         "contacts": ["sim-cmd"]}]
    nodes: list[dict[str, object]] = [{
        "key": "d", "name": "福田街道", "kind": "subdistrict", "roles": {"commander": ["cmd"]},
        "groups": [{"room": "futian@chatroom", "title": "福田街道指挥群"}]}]
    for c in range(COMMUNITIES):
        nodes.append({"key": f"c{c}", "name": f"社区{c}", "kind": "community", "parent": "d",
                      "groups": [{"room": f"c{c}@chatroom", "title": f"社区{c}群"}]})
    for t in range(TEAMS):
        nodes.append({"key": f"t{t}", "name": f"作战小组{t}", "kind": "team",
                      "parent": f"c{t % COMMUNITIES}"})
        nodes.append({"key": f"f{t}", "name": f"房东群{t}", "kind": "team_landlords",
                      "parent": f"t{t}",
                      "groups": [{"room": f"f{t}@chatroom", "title": f"小组{t}房东群"}]})
    for n in range(people):
        persons.append({"key": f"p{n}", "name": f"房东{n}", "mobile": f"13{n % 10}{n:08d}",
                        "contacts": [f"sim-p{n}"]})
        node: dict[str, object] = {"key": f"n{n}", "name": f"出租房{n}",
                                   "kind": "landlord_tenants", "parent": f"f{n % TEAMS}",
                                   "roles": {"landlord": [f"p{n}"]}}
        if group_every and n % group_every == 0:
            node["groups"] = [{"room": f"n{n}@chatroom", "title": f"出租房{n}租客群"}]
        nodes.append(node)
    return {"transport": "sim", "people": persons, "nodes": nodes}


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def write_toml(path: Path, raw: dict[str, object]) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(f"transport = {_toml_value(raw['transport'])}\n")
        for section in ("people", "nodes"):
            for item in raw[section]:  # type: ignore[attr-defined]
                out.write(f"\n[[{section}]]\n")
                for key, value in item.items():
                    out.write(f"{key} = {_toml_value(value)}\n")


def write_yaml(path: Path, raw: dict[str, object]) -> None:
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(raw, out, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                  allow_unicode=True, sort_keys=False)


def write_workbook(path: Path, raw: dict[str, object]) -> None:
    people = [["key", "name", "mobile", "contacts"]] + [
        [p["key"], p["name"], p.get("mobile"), " ".join(p.get("contacts", []))]
        for p in raw["people"]]  # type: ignore[attr-defined]
    nodes = [["key", "name", "kind", "parent", *ROLES]] + [
        [n["key"], n["name"], n["kind"], n.get("parent"),
         *[" ".join(n.get("roles", {}).get(r, [])) for r in ROLES]]
        for n in raw["nodes"]]  # type: ignore[attr-defined]
    groups = [["node", "room", "title"]] + [
        [n["key"], g["room"], g["title"]]
        for n in raw["nodes"] for g in n.get("groups", [])]  # type: ignore[attr-defined]
    write_xlsx(path, {"chain": [["transport"], ["sim"]], "people": people, "nodes": nodes,
                      "groups": groups})


async def _fresh(url: str) -> None:
    await (await bulk.fresh_engine(url)).dispose()


async def run_import(url: str, path: Path) -> dict[str, object]:
    """Load and import one file (as `tierbot chain import` does); figures as a dict."""
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if sys.stderr.isatty() and now - last[0] > 0.2:
            last[0] = now
            sys.stderr.write(f"\r\033[K  {path.suffix[1:]}: {stage} {done:,}"
                             + (f"/{total:,}" if total else ""))
            sys.stderr.flush()

    started = time.perf_counter()
    cpu0 = time.process_time()
    spec = chainfile.load(path, progress=progress)
    loaded = time.perf_counter() - started
    gc.freeze()  # as `tierbot chain import` does: the items stay out of the collector's walks
    engine = store.create_engine(url)

    async with store.sessionmaker(engine)() as session, session.begin():
        pid = await bulk.server_pid(session)
        db0 = bulk.server_cpu(pid)
        counts = await chainfile.import_chain(session, spec, now=datetime.now(UTC),
                                              progress=progress)
    db1 = bulk.server_cpu(pid)  # the commit included
    await engine.dispose()
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    return {"load": loaded, "total": time.perf_counter() - started,
            "cpu": time.process_time() - cpu0,
            "db_cpu": db1 - db0 if db0 is not None and db1 is not None else None,
            "rss": peak_rss_mb(), **counts}


def peak_rss_mb() -> float:
    """This process's peak RSS in MB. VmHWM on Linux: ru_maxrss survives execve, so a child
    started by a parent that had built the chain in memory would report the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    bulk.throwaway_keys()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=100_000)
    p.add_argument("--group-every", type=int, default=10,
                   help="one landlord in N has a bound tenants' group (0: none)")
    p.add_argument("--formats", default="toml,yaml,xlsx")
    p.add_argument("--db-url", help="PostgreSQL URL (its public schema is recreated)")
    p.add_argument("--keep", type=Path, help="write the files and databases here")
    p.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        url, file = args.child
        asyncio.run(_fresh(url))
        print(json.dumps(asyncio.run(run_import(url, Path(file)))))
        return
    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    where = Path(tmp.name) if tmp else args.keep
    where.mkdir(parents=True, exist_ok=True)
    raw = chain_dict(args.people, args.group_every)
    writers = {"toml": write_toml, "yaml": write_yaml, "xlsx": write_workbook}
    db = "postgresql" if args.db_url else "sqlite"
    print(f"{args.people:,} people, {sum(len(n.get('groups', [])) for n in raw['nodes']):,} "
          f"groups, {len(raw['nodes']):,} nodes; database: {db}", flush=True)
    print(f"{'format':<6} {'file MB':>8} {'load s':>7} {'total s':>8} {'CPU s':>7} "
          f"{'DB CPU s':>9} {'peak RSS MB':>12}  imported", flush=True)
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    for fmt in args.formats.split(","):
        path = where / f"chain.{fmt}"
        writers[fmt](path, raw)
        if args.db_url:
            url = store.async_url(args.db_url)
        else:
            db_path = where / f"import-{fmt}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(db_path) + suffix).unlink(missing_ok=True)
            url = f"sqlite+aiosqlite:///{db_path}"
        out = subprocess.run([sys.executable, __file__, "--child", url, str(path)],
                             check=True, env=os.environ, stdout=subprocess.PIPE, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        db_cpu = "-" if r["db_cpu"] is None else f"{r['db_cpu']:.1f}"
        print(f"{fmt:<6} {path.stat().st_size / 1e6:>8.1f} {r['load']:>7.1f} {r['total']:>8.1f} "
              f"{r['cpu']:>7.1f} {db_cpu:>9} {r['rss']:>12.0f}  {r['people']:,} people, "
              f"{r['nodes']:,} nodes, {r['groups']:,} groups, {r['roles']:,} roles, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
