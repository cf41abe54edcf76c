"""The chain: nodes of tiers 1-5 and the chat groups bound to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime


class NodeKind(StrEnum):
    """What a node of the chain is; the tier follows from the kind."""

    SUBDISTRICT = "subdistrict"
    COMMUNITY = "community"
    TEAM = "team"
    TEAM_LANDLORDS = "team_landlords"
    LANDLORD_TENANTS = "landlord_tenants"
    # A shop-row captain (铺长) with the shops of their row: a tier-5 group like a landlord's.
    SHOP_ROW = "shop_row"
    # An enterprise (一企一档) under a community, its group commanded by its liaison; its
    # workshops and dormitories (分组管理) are groups below it.
    ENTERPRISE = "enterprise"
    WORKGROUP = "workgroup"
    # A key project (重点工程) under a community, its task force group (专班) led by its lead.
    PROJECT = "project"


TIER_OF_KIND: dict[NodeKind, int] = {
    NodeKind.SUBDISTRICT: 1,
    NodeKind.COMMUNITY: 2,
    NodeKind.TEAM: 3,
    NodeKind.TEAM_LANDLORDS: 4,
    NodeKind.LANDLORD_TENANTS: 5,
    NodeKind.SHOP_ROW: 5,
    NodeKind.ENTERPRISE: 3,
    NodeKind.WORKGROUP: 4,
    NodeKind.PROJECT: 3,
}


class Node(Base):
    """One unit of the chain (一级作战单元 ... 房东+租客)."""

    __tablename__ = "node"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed for 进度's first silent groups of a small tier (20 communities among 100,000
    # nodes: not a scan of every node).
    tier: Mapped[int] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("node.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    parent: Mapped[Node | None] = relationship(remote_side=[id], lazy="raise")


class Group(Base):
    """A chat room bound to a node; the platform's room id is the identity, the title a label."""

    __tablename__ = "chat_group"
    __table_args__ = (UniqueConstraint("transport", "room_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    transport: Mapped[str] = mapped_column(String(32))
    room_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    # The channel (bot account or robot) that sends to this group now ("" = the transport's
    # only account): outbox rows copy it when queued, so a retry goes the same way.
    account: Mapped[str] = mapped_column(String(64), default="")
    # The channel to send through when `account` is down ("" = none); failover swaps them
    # and records the primary in `moved_from` ("" while the group is on its primary).
    fallback_account: Mapped[str] = mapped_column(String(64), default="", server_default="")
    moved_from: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    node: Mapped[Node] = relationship(lazy="raise")


class SubtreeFigure(Base):
    """A figure of a node's subtree (the node itself included) that 统计 would otherwise count
    from 100,000 rows, kept by triggers (migration 0020_figures) on membership, tenant_stay
    and node, never written by the application; each key's rows summed over their shards
    equal at all times the aggregate of bot.services.stats.REBUILD_FIGURES. Rows may hold 0
    (a shard's row, less than 0). Keys (FigureKey):

    - landlords: persons with a landlord membership at a node of the subtree;
    - tenants: tenants with a stay not ended (ended_at IS NULL) at such a node;
    - stays: stays at such a node, ended or not.

    They are the figures as of the last write: 统计 reads them for a day when no row is dated
    after its moment (bot.services.stats.kept_figures), and counts the rows otherwise."""

    __tablename__ = "subtree_figure"

    node_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    # Which connection's share this row is (migration 0022_counter_shards): a figure is the
    # sum of its key's rows.
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False,
                                       server_default="0")
    value: Mapped[int]


class FigureKey(StrEnum):
    """SubtreeFigure.key."""

    LANDLORDS = "landlords"
    TENANTS = "tenants"
    STAYS = "stays"
