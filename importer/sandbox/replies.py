"""HubSpot's error answers, shared by the sandbox's endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from .store import now_iso

__all__ = ["Reply", "error", "not_found", "refused_whole", "standard_error"]


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


def refused_whole(err: dict[str, Any]) -> Reply:
    """HubSpot's 400 for a batch refused whole over one input's error `err`: an `Error` body
    (with its correlation id) carrying that error's message, category, details and context."""
    return Reply(
        400,
        error(
            err["message"],
            err.get("category", "VALIDATION_ERROR"),
            errors=err.get("errors", []),
            context=err.get("context", {}),
        ),
    )


def batch_response(
    results: list[Any], errors: list[dict[str, Any]], started: str, status: str = "COMPLETE"
) -> dict[str, Any]:
    """HubSpot's BatchResponse body: the batch's status, its results and timestamps, and,
    when some inputs were not carried out, their errors (as StandardError) and count."""
    reply: dict[str, Any] = {
        "status": status,
        "results": results,
        "startedAt": started,
        "completedAt": now_iso(),
    }
    if errors:
        reply["numErrors"] = len(errors)
        reply["errors"] = [standard_error(e) for e in errors]
    return reply


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
