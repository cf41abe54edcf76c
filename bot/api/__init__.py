"""The admin API (FastAPI): the same services the chat uses, for administrators and dashboards."""

from bot.api.app import create_api

__all__ = ["create_api"]
