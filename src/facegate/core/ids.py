"""Opaque public ids."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """An opaque, URL-safe public id such as ``p_3fJ2k9QxTbY``."""
    return f"{prefix}_{secrets.token_urlsafe(9)}"
