"""A person as every layer knows them: an opaque id, a display name, metadata."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Person:
    """An enrolled person. ``id`` is stable and opaque; ``name`` is for display."""

    id: str
    name: str
    created_at: float = field(default_factory=time.time)
    metadata: dict = field(default_factory=dict)
