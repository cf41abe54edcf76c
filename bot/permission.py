"""Who may use a command: a `Rule` is a Chinese name and a predicate over the context.

A route declares its rule once; dispatch, 帮助 and the refusal all read that one value, so
what 帮助 lists is exactly what would be accepted. Rules combine with `|` (either) and `&`
(both)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.services.chain import COMMANDING_ROLE, commanding_role
from models import NodeKind, Role

if TYPE_CHECKING:
    from bot.router import Context


@dataclass(frozen=True, slots=True)
class Rule:
    """A named predicate: `name` says in Chinese who passes (「核查」由{name}使用)."""

    name: str | Callable[[Context], str]
    test: Callable[[Context], bool]

    def __call__(self, ctx: Context) -> bool:
        return self.test(ctx)

    def describe(self, ctx: Context) -> str:
        """Who passes, in Chinese (a name may depend on the settings)."""
        return self.name(ctx) if callable(self.name) else self.name

    def __or__(self, other: Rule) -> Rule:
        return Rule(lambda ctx: f"{self.describe(ctx)}或{other.describe(ctx)}",
                    lambda ctx: self(ctx) or other(ctx))

    def __and__(self, other: Rule) -> Rule:
        return Rule(lambda ctx: f"{self.describe(ctx)}（{other.describe(ctx)}）",
                    lambda ctx: self(ctx) and other(ctx))


def holds(*roles: Role, name: str) -> Rule:
    """The sender holds one of these roles in this group (see Context.roles)."""
    wanted = frozenset(roles)
    return Rule(name, lambda ctx: bool(ctx.roles & wanted))


def _commands_here(ctx: Context) -> bool:
    return ctx.node is not None and commanding_role(ctx.node) in ctx.roles


def _commands_parent(ctx: Context) -> bool:
    # The commander one tier up sits in this group too (指挥长下沉到下一级的微信群).
    node = ctx.node
    if node is None or node.parent_id is None or node.tier < 2:
        return False
    role = COMMANDING_ROLE[node.tier - 1]
    return any(m.node_id == node.parent_id and m.role == role for m in ctx.memberships)


def _verifier_name(ctx: Context) -> str:
    from bot import texts
    settings = ctx.settings.points
    return texts.Permission.VERIFIER.format(
        tier=texts.TIER_SHORT[settings.verifier_tier],
        role=texts.ROLE_NAMES[settings.verifier_role])


def _verifies(ctx: Context) -> bool:
    settings = ctx.settings.points
    return (ctx.node is not None and ctx.node.tier == settings.verifier_tier
            and Role(settings.verifier_role) in ctx.roles)


def _landlord_form_by_landlord(ctx: Context) -> bool:
    # 房东上报 返回 is the landlord's form of 租客返回: only the landlord may use it.
    return not getattr(ctx.command, "landlord_form", False) or Role.LANDLORD in ctx.roles


# The rules the routes declare (one place; a new kind of permission is a new rule here).
LANDLORD = holds(Role.LANDLORD, name="房东")
GROUP_COMMANDER = Rule("本群指挥长", _commands_here)
PARENT_COMMANDER = Rule("上级指挥长", _commands_parent)
STAFF = holds(Role.COMMANDER, Role.MEMBER, Role.SECRETARY, name="指挥长、作战小组成员或书记")
COMMANDER_OR_SECRETARY = holds(Role.COMMANDER, Role.SECRETARY, name="指挥长或书记")
VERIFIER = Rule(_verifier_name, _verifies)
LANDLORD_FORM = Rule("房东", _landlord_form_by_landlord)


def _in_shop_row(ctx: Context) -> bool:
    from models import NodeKind
    return ctx.node is not None and ctx.node.kind == NodeKind.SHOP_ROW


# Shop rows: the group of a row (anyone there, e.g. an owner registering), and its captain.
SHOP_ROW_GROUP = Rule("商户群成员", _in_shop_row)
CAPTAIN = holds(Role.CAPTAIN, name="铺长")
# In the row's group, or in the team's tier-4 group a captain also sits in (see Context.roles).
ROW_CAPTAIN = Rule("本排铺长", lambda ctx: Role.CAPTAIN in ctx.roles and (
    _in_shop_row(ctx) or (ctx.node is not None and ctx.node.tier == 4)))
COMMUNITY_REVIEWER = Rule("社区指挥长或书记",
                          lambda ctx: ctx.holds(Role.COMMANDER, tier=2)
                          or ctx.holds(Role.SECRETARY, tier=2))
def _liaison_here(ctx: Context) -> bool:
    # The liaison holds the role at the enterprise and commands its workshop and dorm groups.
    node = ctx.node
    if node is None or node.kind not in (NodeKind.ENTERPRISE, NodeKind.WORKGROUP):
        return False
    places = {node.id} | ({node.parent_id} if node.kind == NodeKind.WORKGROUP else set())
    return any(m.role == Role.LIAISON and m.node_id in places for m in ctx.memberships)


def _leads_project(ctx: Context) -> bool:
    return (ctx.node is not None and ctx.node.kind == NodeKind.PROJECT
            and Role.PROJECT_LEAD in ctx.roles)


def _community_staff(ctx: Context) -> bool:
    return (ctx.node is not None and ctx.node.kind == NodeKind.COMMUNITY
            and bool(ctx.roles & {Role.COMMANDER, Role.SECRETARY}))


LIAISON = Rule("企业联络员", _liaison_here)
PROJECT_LEAD = Rule("专班负责人", _leads_project)
COMMUNITY_STAFF = Rule("社区指挥长或书记", _community_staff)
