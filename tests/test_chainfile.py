"""Chain files (bot/chainfile.py): load, import (idempotent), errors, and the printed tree."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bot import chainfile
from bot.app import BotApp
from bot.chainfile import ChainFileError, ChainSpec
from models import Building, Contact, Flat, Group, Membership, Node, Person, Shop
from tests.conftest import count

DEMO_CHAIN = Path(__file__).parents[1] / "bot" / "demo" / "chain.toml"
TABLES = (Node, Group, Membership, Person, Contact, Building, Flat, Shop)


async def import_file(bot: BotApp, path: Path) -> dict[str, int]:
    """Load and import a chain file in one transaction, like `tierbot chain import`."""
    spec = chainfile.load(path)
    async with bot.session() as session, session.begin():
        return await chainfile.import_chain(session, spec, now=bot.now())


async def tree(bot: BotApp) -> str:
    async with bot.session() as session:
        return await chainfile.render_tree(session)


async def table_counts(bot: BotApp) -> dict[str, int]:
    return {model.__tablename__: await count(bot, model) for model in TABLES}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def line_of(rendered: str, name: str) -> str:
    [line] = [ln for ln in rendered.splitlines() if ln.lstrip().startswith(f"{name} [")]
    return line


async def test_demo_chain_import_counts(bot: BotApp):
    counts = await import_file(bot, DEMO_CHAIN)
    assert counts == {"nodes": 7, "groups": 7, "people": 10, "roles": 11}
    assert await table_counts(bot) == {
        "node": 7, "chat_group": 7, "membership": 11, "person": 10, "contact": 10,
        "building": 1, "flat": 6, "shop": 10}
    assert await count(bot, Node, Node.tier == 5) == 3


async def test_reimport_is_idempotent(bot: BotApp):
    await import_file(bot, DEMO_CHAIN)
    before = await table_counts(bot)
    rendered = await tree(bot)
    counts = await import_file(bot, DEMO_CHAIN)
    assert counts["nodes"] == 0 and counts["groups"] == 0 and counts["roles"] == 0
    assert await table_counts(bot) == before
    assert await tree(bot) == rendered


async def test_reimport_of_people_known_only_by_name_is_idempotent(bot: BotApp,
                                                                  tmp_path: Path):
    # A chain set up before anyone has bound: people with neither contact nor mobile.
    path = write(tmp_path / "chain.toml", """
[[people]]
key = "zhou"
name = "周书记"

[[nodes]]
name = "稠城街道"
kind = "subdistrict"
roles = { commander = ["zhou"] }
""")
    await import_file(bot, path)
    before = await table_counts(bot)
    counts = await import_file(bot, path)
    assert counts["roles"] == 0
    assert await table_counts(bot) == before


async def test_yaml_equivalent_of_the_demo_chain(bot: BotApp, tmp_path: Path):
    raw = tomllib.loads(DEMO_CHAIN.read_text(encoding="utf-8"))
    path = write(tmp_path / "chain.yaml", yaml.safe_dump(raw, allow_unicode=True))
    assert chainfile.load(path) == chainfile.load(DEMO_CHAIN)
    counts = await import_file(bot, path)
    assert counts == {"nodes": 7, "groups": 7, "people": 10, "roles": 11}
    assert "福田街道" in await tree(bot)


async def test_hand_written_yaml(bot: BotApp, tmp_path: Path):
    path = write(tmp_path / "chain.yml", """
transport: sim
people:
  - key: he
    name: 何主任
    mobile: "13611112222"
    contacts: [sim-he]
nodes:
  - key: jd
    name: 江东街道
    kind: subdistrict
    groups:
      - room: jd@chatroom
        title: 江东街道指挥群
    roles:
      commander: [he]
  - name: 青口社区
    kind: community
    parent: 江东街道          # a parent may be named instead of keyed
""")
    assert await import_file(bot, path) == {"nodes": 2, "groups": 1, "people": 1, "roles": 1}
    rendered = await tree(bot)
    assert "何主任" in line_of(rendered, "江东街道")
    assert line_of(rendered, "青口社区").startswith("  ")


async def test_parent_listed_after_child_fails_on_import(bot: BotApp, tmp_path: Path):
    path = write(tmp_path / "chain.toml", """
[[nodes]]
name = "长春社区"
kind = "community"
parent = "futian"

[[nodes]]
key = "futian"
name = "福田街道"
kind = "subdistrict"
""")
    with pytest.raises(ChainFileError) as err:
        await import_file(bot, path)
    assert "长春社区" in str(err.value) and "futian" in str(err.value)
    assert "before" in str(err.value)
    assert await count(bot, Node) == 0


async def test_tier_mismatch_is_an_error(bot: BotApp, tmp_path: Path):
    path = write(tmp_path / "chain.toml", """
[[nodes]]
key = "futian"
name = "福田街道"
kind = "subdistrict"

[[nodes]]
name = "长春第一作战小组"
kind = "team"
parent = "futian"
""")
    with pytest.raises(ChainFileError) as err:
        await import_file(bot, path)
    message = str(err.value)
    assert "长春第一作战小组" in message and "tier 3" in message and "tier 1" in message
    # The transaction is rolled back: not even the valid root was kept.
    assert await count(bot, Node) == 0


async def test_root_that_is_not_a_subdistrict_is_an_error(bot: BotApp, tmp_path: Path):
    path = write(tmp_path / "chain.toml", """
[[nodes]]
name = "长春社区"
kind = "community"
""")
    with pytest.raises(ChainFileError) as err:
        await import_file(bot, path)
    assert "长春社区" in str(err.value)


async def test_unknown_person_key_is_an_error(bot: BotApp, tmp_path: Path):
    path = write(tmp_path / "chain.toml", """
[[people]]
key = "zhang"
name = "张建国"
contacts = ["sim-zhangjianguo"]

[[nodes]]
name = "福田街道"
kind = "subdistrict"
roles = { commander = ["zhang", "ghost"] }
""")
    with pytest.raises(ChainFileError) as err:
        await import_file(bot, path)
    message = str(err.value)
    assert "福田街道" in message and "'ghost'" in message and "commander" in message
    assert await count(bot, Person) == 0


async def test_duplicate_person_key_is_an_error(bot: BotApp, tmp_path: Path):
    path = write(tmp_path / "chain.yaml", """
people:
  - {key: a, name: 甲, contacts: [sim-a]}
  - {key: a, name: 乙, contacts: [sim-b]}
nodes: []
""")
    with pytest.raises(ChainFileError) as err:
        await import_file(bot, path)
    assert "'a'" in str(err.value) and "twice" in str(err.value)


@pytest.mark.parametrize("text, words", [
    (('[[people]]\nkey = "dong"\nname = "董宝明"\nmobile = "1375791234"\n'
      '[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\n'),
     ["people.0.mobile", "mobile"]),
    ('[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\ncolour = "red"\n',
     ["nodes.0.colour"]),
    (('[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\n'
      '[[nodes]]\nname = "长春社区"\nkind = "village"\nparent = "福田街道"\n'),
     ["nodes.1.kind"]),
    ('[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\nroles = { chief = [] }\n',
     ["nodes.0.roles.chief"]),
    (('[[people]]\nkey = "a"\nname = "甲"\nemail = "a@b"\n'
      '[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\n'),
     ["people.0.email"]),
    ('[[nodes]]\nkind = "subdistrict"\n', ["nodes.0.name"]),
    ('people = []\n', ["nodes"]),
])
def test_invalid_file_names_the_key(tmp_path: Path, text: str, words: list[str]):
    path = write(tmp_path / "chain.toml", text)
    with pytest.raises(ChainFileError) as err:
        chainfile.load(path)
    message = str(err.value)
    assert message.startswith(str(path))
    for word in words:
        assert word in message


def test_syntax_errors_and_wrong_suffix(tmp_path: Path):
    with pytest.raises(ChainFileError, match="not valid"):
        chainfile.load(write(tmp_path / "bad.toml", "[[nodes]\nname = 1\n"))
    with pytest.raises(ChainFileError, match="not valid"):
        chainfile.load(write(tmp_path / "bad.yaml", "nodes: [\n"))
    with pytest.raises(ChainFileError, match=r"\.toml, \.yaml or \.yml"):
        chainfile.load(write(tmp_path / "chain.json", "{}"))
    with pytest.raises(ChainFileError) as err:
        chainfile.load(tmp_path / "missing.toml")
    assert "missing.toml" in str(err.value)


async def test_render_tree_shows_names_tiers_commanders_and_groups(bot: BotApp):
    await import_file(bot, DEMO_CHAIN)
    rendered = await tree(bot)
    expected = [
        ("福田街道", 0, 1, "commander: 张建国"),
        ("长春社区", 1, 2, "commander: 李卫东"),
        ("长春第一作战小组", 2, 3, "commander: 吴海峰"),
        ("第一小组房东群", 3, 4, "member: 刘芳"),
        ("董宝明出租房", 4, 5, "landlord: 董宝明"),
        ("应天喜出租房", 4, 5, "landlord: -"),
        ("长春专业街一排", 4, 5, "captain: 王强"),
    ]
    for name, depth, tier, heads in expected:
        line = line_of(rendered, name)
        assert line.startswith("  " * depth + name), line
        assert f"tier {tier}" in line and heads in line, line
    # The secretary and the member are counted, not listed as commanders.
    assert "+1 others" in line_of(rendered, "长春社区")
    assert "group 应天喜租客群 (sim:ying@chatroom)" in rendered
    assert rendered.splitlines()[-1] == "7 nodes, 7 groups, 10 contact ids"
    # The landlord's mobile number is not printed.
    assert "13757912345" not in rendered


async def test_render_tree_of_an_empty_store(bot: BotApp):
    assert await tree(bot) == "0 nodes, 0 groups, 0 contact ids"


# --- a TOML file read in pieces (bot/chainfile.py: _toml_parts) -------------------------------

PIECES = [
    # Sections interleaved, sub-tables of an item, more items than a piece holds.
    ('transport = "sim"\n'
     + "".join(f'[[people]]\nkey = "p{i}"\nname = "人{i}"\ncontacts = ["sim-p{i}"]\n'
               for i in range(7))
     + '[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\n'
       '[[nodes.groups]]\nroom = "futian@chatroom"\ntitle = "福田街道群"\n'
       '[nodes.roles]\ncommander = ["p0", "p1"]\n'
     + '[[people]]\nkey = "late"\nname = "迟到"\n'
     + "".join(f'[[nodes]]\nname = "社区{i}"\nkind = "community"\nparent = "福田街道"\n'
               for i in range(5))),
    # A multi-line string holding a header line: cut there, a piece fails; read whole.
    ("".join(f'[[people]]\nkey = "p{i}"\nname = "人{i}"\n' for i in range(3))
     + '[[people]]\nkey = "a"\nname = """甲\n[[people]]\nkey = "b"\n"""\n'
       '[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\n'),
    # Lists written inline, and a table after the items: read whole.
    'people = [{key = "a", name = "甲"}]\nnodes = [{name = "福田街道", kind = "subdistrict"}]\n',
    ('[[nodes]]\nname = "福田街道"\nkind = "subdistrict"\n'
     '[[people]]\nkey = "a"\nname = "甲"\n[chain]\nnote = "x"\n'),
]


YAML_PIECES = [
    yaml.safe_dump(tomllib.loads(PIECES[0]), allow_unicode=True, sort_keys=False),
    # Items indented under their key, a comment, a block scalar holding "- " lines.
    ('transport: sim\npeople:\n  - {key: a, name: 甲, contacts: [sim-a]}\n# note\n'
     '  - key: b\n    name: |\n      乙\n      - key: c\n  - key: d\n    name: 丁\n'
     'nodes:\n  - name: 福田街道\n    kind: subdistrict\n    roles: {commander: [a, b, d]}\n'),
    # Read whole: lists inline, a list given twice, an alias into another piece, `people:`
    # with nothing under it, a document marker.
    'people: [{key: a, name: 甲}]\nnodes: [{name: 福田街道, kind: subdistrict}]\n',
    ('people:\n- {key: a, name: 甲}\nnodes:\n- {name: 福田街道, kind: subdistrict}\n'
     'people:\n- {key: b, name: 乙}\n'),
    ('people:\n- &x {key: a, name: 甲}\n- {key: b, name: 乙}\n- {key: c, name: 丙}\n'
     '- {key: d, name: 丁}\n- *x\nnodes:\n- {name: 福田街道, kind: subdistrict}\n'),
    'people:\nnodes:\n- {name: 福田街道, kind: subdistrict}\n',
    '---\nnodes:\n- {name: 福田街道, kind: subdistrict}\n',
]


@pytest.mark.parametrize(("suffix", "text"), [(".toml", t) for t in PIECES]
                         + [(".yaml", t) for t in YAML_PIECES])
def test_a_file_read_in_pieces_is_the_file_read_whole(tmp_path: Path, suffix: str,
                                                      text: str, monkeypatch):
    monkeypatch.setattr(chainfile, "_ITEMS_PER_PIECE", 2)
    path = write(tmp_path / f"chain{suffix}", text)
    try:
        whole: object = ChainSpec.model_validate(
            tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text))
    except ValidationError as exc:
        whole = sorted(".".join(str(p) for p in e["loc"]) for e in exc.errors())
    try:
        pieces: object = chainfile.load(path)
    except ChainFileError as exc:
        pieces = sorted(part.split(": ")[0] for part in
                        str(exc).removeprefix(f"{path}: ").split("; "))
    assert pieces == whole


def test_problems_in_later_pieces_name_their_item(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(chainfile, "_ITEMS_PER_PIECE", 2)
    text = "".join(f'[[people]]\nkey = "p{i}"\nname = "人{i}"\n'
                   + ('mobile = "12345"\n' if i in (4, 6) else "") for i in range(8))
    path = write(tmp_path / "chain.toml", text + '[[nodes]]\nname = "街道"\nkind = "team"\n'
                 '[[nodes]]\nname = "x"\n')
    with pytest.raises(ChainFileError) as err:
        chainfile.load(path)
    message = str(err.value)
    for place in ("people.4.mobile", "people.6.mobile", "nodes.1.kind"):
        assert place in message
    assert "people.5" not in message and "nodes.0" not in message


# --- a YAML file built from the parser's events (bot/chainfile.py: _YamlItems) ----------------

YAML_SCALARS = [
    # Plain scalars take yaml.safe_load's implicit types; quoted and block ones stay strings.
    ("transport: sim\npeople:\n- {key: a, name: 甲, mobile: 13800138000}\n"
     "- {key: '1', name: \"2\", mobile: '13800138000'}\n- {key: 007, name: 0x1f}\n"
     "- {key: yes, name: no, contacts: [on, off, ~, null, '', 1.5, .inf, -3, +4, 1_000]}\n"
     "- {key: 2020-02-20, name: 2020-02-20 08:00:00, contacts: [1:20, 0o7, '=', '<<']}\n"
     "- key: b\n  name: |\n    乙\n    - c\n  contacts: >\n    folded\n    text\n"
     "nodes:\n- name: 福田街道\n  kind: subdistrict\n  roles:\n    commander: [a, b]\n"
     "  groups: []\nextra: {x: [1, {y: z}], 3: true}\n"),
    # A key of another type, keys given twice inside an item (the last wins), an empty list.
    "people: []\nnodes:\n- {name: 甲, name: 乙, kind: team, 5: x, null: y, true: z}\n",
    # The lists written as flow sequences, the top keys in another order, a comment.
    "# chain\nnodes: [{name: 福田街道, kind: subdistrict}]\ntransport: wechaty\npeople: [{key: a, "
    "name: 甲}]\n",
    # Only comments, an empty document, a document marker and its end.
    "# nothing here\n",
    "---\nnodes:\n- {name: 福田街道, kind: subdistrict}\n...\n",
]

YAML_WHOLE = [
    # What the event builder leaves to yaml.safe_load: anchors and aliases, explicit tags, merge
    # keys, a key that is a mapping, a list given twice, a second document, a top-level list,
    # an empty document, a syntax error.
    "people:\n- &x {key: a, name: 甲}\n- *x\nnodes: []\n",
    "people:\n- {key: !!str 1, name: 甲}\nnodes: []\n",
    "people: !!seq\n- {key: a, name: 甲}\nnodes: []\n",
    "base: &b {kind: team}\nnodes:\n- {<<: *b, name: 甲}\n",
    "nodes:\n- {name: 甲, kind: team, ? {a: 1} : x}\n",
    "nodes: []\npeople: []\nnodes:\n- {name: 甲, kind: team}\n",
    "nodes: []\n---\nnodes: []\n",
    "- {name: 甲, kind: team}\n",
    "---\n",
    "nodes: [\n",
    "people:\n- {key: a, name: 甲, contacts: [=]}\nnodes: []\n",
]


@pytest.mark.parametrize("text", YAML_SCALARS)
def test_yaml_items_from_events_are_what_safe_load_gives(tmp_path: Path, text: str):
    path = write(tmp_path / "chain.yaml", text)
    parts = list(chainfile._yaml_parts(path))
    whole = yaml.safe_load(text) or {}
    lists = {name: [item for part, item in parts if part == name] for name in ("people", "nodes")}
    (top,) = [item for part, item in parts if part == "top"]
    assert parts[-1][0] == "top"
    assert {**top, **{k: v for k, v in lists.items() if k in whole}} == whole
    assert {k: type(v) for k, v in top.items()} == {
        k: list if k in lists else type(v) for k, v in whole.items()}


@pytest.mark.parametrize("text", YAML_WHOLE)
def test_yaml_the_event_builder_leaves_to_the_whole_loader(tmp_path: Path, text: str,
                                                           monkeypatch):
    path = write(tmp_path / "chain.yaml", text)
    with pytest.raises(chainfile._Resplit):
        list(chainfile._yaml_parts(path))

    def outcome() -> object:
        try:
            return chainfile.load(path)
        except ChainFileError as exc:
            return str(exc)

    loaded = outcome()

    def whole(path: Path) -> Iterator[chainfile.Part]:
        raise chainfile._Resplit
        yield  # a generator, like the real one

    monkeypatch.setattr(chainfile, "_yaml_parts", whole)
    assert loaded == outcome()


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path):
    good = "".join(f"- {{key: p{i}, name: 人{i}}}\n" for i in range(50))
    path = write(tmp_path / "chain.yaml", f"people:\n{good}- {{key: x, name: [\nnodes: []\n")
    with pytest.raises(ChainFileError, match="line 5[23]"):
        chainfile.load(path)
