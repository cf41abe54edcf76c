"""Small types shared by services, handlers and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from models import Role


class UserError(Exception):
    """A mistake the user can fix; `text` is the Chinese answer. The pipeline rolls back."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class HeldRole:
    """A role a person holds, where, and that node's parent (to see one tier up)."""

    role: Role
    node_id: int
    parent_id: int | None
