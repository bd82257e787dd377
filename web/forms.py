"""Reading what a dashboard form posted back: the API's userErrors per field, and a safe `next` path."""

from __future__ import annotations

from collections.abc import Sequence

from web.results import UserErrorFields

__all__ = ["field_errors", "local_path"]


def field_errors(user_errors: Sequence[UserErrorFields]) -> tuple[dict[str, str], list[str]]:
    """userErrors split into messages per input field (last part of `field`) and messages without one."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for error in user_errors:
        path = error.get("field") or []
        if path:
            by_field.setdefault(str(path[-1]), error["message"])
        else:
            general.append(error["message"])
    return by_field, general


def local_path(value: str | None, default: str) -> str:
    """`value` if it is a path of this dashboard (never another host), else `default`."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return default
