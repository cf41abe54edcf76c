"""Command handlers, one module per command family; ROUTERS is the order 帮助 lists them in."""

from handlers import (
    bind,
    help,
    landlord,
    membership,
    notice,
    points,
    schedule,
    shop,
    stats,
    tenant,
    ticket,
    unit,
)

ROUTERS = (tenant.router, landlord.router, notice.router, schedule.router, ticket.router,
           bind.router, points.router, membership.router, shop.router, stats.router,
           unit.router, help.router)

__all__ = ["ROUTERS"]
