"""Where facegate keeps its data by default."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """``$FACEGATE_DATA_DIR`` or the user's data directory (e.g. ``~/.local/share/facegate``)."""
    env = os.environ.get("FACEGATE_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("facegate"))
