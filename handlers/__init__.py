"""Command handlers, one module per command family; ROUTERS is the order 帮助 lists them in."""

from handlers import bind, help, landlord, tenant

ROUTERS = (tenant.router, landlord.router, bind.router, help.router)

__all__ = ["ROUTERS"]
