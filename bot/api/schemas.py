"""API schemas (XPublic: what leaves the server; personal numbers are masked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class GroupPublic(BaseModel):
    """A chat group bound to a node."""

    id: int
    transport: str
    room_id: str
    title: str


class NodePublic(BaseModel):
    """A node of the chain with its groups, commanders and children."""

    id: int
    tier: int
    kind: str
    name: str
    commanders: list[str]
    groups: list[GroupPublic]
    children: list[NodePublic]


class TenantStayPublic(BaseModel):
    """A tenant's stay, masked."""

    id: int
    node_id: int
    name: str
    mobile: str
    origin: str | None
    arrived_at: datetime
    watch_until: datetime
    under_watch: bool
    fever: bool
    last_temperature: float | None


class Health(BaseModel):
    """Liveness and the store's reachability."""

    status: str
    database: str


class AccountPublic(BaseModel):
    """A bot account's state."""

    name: str
    connected: bool
    logged_in_as: str
    last_error: str
    paused_until: datetime | None
    pending: int
    # The watchdog's view: "ok", "degraded", "down" or "unknown"; problems; not ok since.
    health: str = "unknown"
    problems: list[str] = []
    since: datetime | None = None


class StatsSectionPublic(BaseModel):
    """One section of the figures: label -> value, in the section's order."""

    key: str
    title: str
    items: dict[str, int]


class StatsPublic(BaseModel):
    """GET /api/stats: a subtree's figures of one day."""

    node_id: int
    node: str
    date: str
    sections: list[StatsSectionPublic]
class Problem(BaseModel):
    """Why a request was refused (401, 403, 404, 429)."""

    detail: str


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these refusal status codes."""
    said = {401: "no valid bearer token (missing, unknown, expired or revoked)",
            403: "the token may not do this", 404: "not found, or not in the token's scope",
            429: "too many wrong tokens from this address: wait Retry-After seconds"}
    return {code: {"model": Problem, "description": said[code]} for code in codes}
