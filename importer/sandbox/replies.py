"""HubSpot's error answers, shared by the sandbox's endpoints."""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["Reply", "error", "not_found", "standard_error"]


def error(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


class Reply(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_found(path: str) -> Reply:
    """HubSpot's 404 for a path it does not serve."""
    return Reply(404, error(f"Resource not found: {path}", "RESOURCE_NOT_FOUND"))


def standard_error(err: dict[str, Any]) -> dict[str, Any]:
    """A per-input error of a 207 answer with every field HubSpot's StandardError has."""
    return {
        "status": err.get("status", "error"),
        "category": err.get("category", "VALIDATION_ERROR"),
        "message": err.get("message", ""),
        "context": err.get("context", {}),
        "errors": [
            {k: v for k, v in e.items() if k in ("message", "code", "context", "in")}
            for e in err.get("errors", [])
        ],
        "links": err.get("links", {}),
    }
