"""The ORM tables, importable from one place (Alembic reads Base.metadata from here)."""

from models.access_log import AccessAction, AccessLog
from models.api_token import ApiToken
from models.base import Base, UTCDateTime
from models.building import Building, Flat
from models.chain import TIER_OF_KIND, FigureKey, Group, Node, NodeKind, SubtreeFigure
from models.console import ConsoleAttempt, ConsoleInvite, ConsoleLogin, ConsoleSession
from models.credential import ChannelCredential
from models.identity import LinkRequest, LinkStatus, Removal, RemovalKind
from models.inbound import InboundMessage
from models.invite_attempt import InviteAttempt
from models.lease import AccountLease
from models.notice import BotAccount, Echo, JobRun, Notice, NoticeRead, NoticeSchedule
from models.outbox import NoticeProgress, OutboxMessage, OutboxStatus
from models.person import Contact, InviteCode, InviteKind, Membership, Person, Role
from models.points import (
    PointsEvent,
    PointsScopeCount,
    PointsStanding,
    PointsStatus,
    PointsTotal,
    PointsWeek,
)
from models.report import LandlordReport, ReportKind
from models.shop import ReopeningStatus, Shop, ShopCheckin, ShopPatrol, ShopReopening
from models.tenant import TemperatureReading, TenantStay
from models.ticket import Ticket
from models.unit import (
    Enterprise,
    EnterpriseReport,
    EnterpriseStatus,
    WorkCard,
    WorkerCard,
    WorkerHealth,
    WorkerReading,
)
from models.watch import AccountWatch

__all__ = [
    "TIER_OF_KIND", "Base", "BotAccount", "Echo", "JobRun", "Notice", "NoticeRead",
    "NoticeSchedule", "Ticket", "Building", "Contact", "Flat", "Group", "InboundMessage",
    "InviteCode", "InviteKind", "LandlordReport", "Membership", "Node", "NodeKind",
    "NoticeProgress", "OutboxMessage", "OutboxStatus", "Person", "ReportKind", "Role", "Shop",
    "ShopCheckin", "ShopPatrol", "ShopReopening", "ReopeningStatus",
    "TemperatureReading", "TenantStay", "UTCDateTime",
    "PointsEvent", "PointsScopeCount", "PointsStanding", "PointsStatus", "PointsTotal",
    "PointsWeek",
    "LinkRequest", "LinkStatus", "Removal", "RemovalKind",
    "InviteAttempt", "AccountLease",
    "AccessAction", "AccessLog",
    "ApiToken",
    "ChannelCredential",
    "AccountWatch",
    "FigureKey", "SubtreeFigure",
    "ConsoleAttempt", "ConsoleInvite", "ConsoleLogin", "ConsoleSession",
    "Enterprise", "EnterpriseReport", "EnterpriseStatus", "WorkCard", "WorkerCard",
    "WorkerHealth", "WorkerReading",
]
