"""facegate: self-hosted real-time face recognition (CPU-first, offline).

Importing the package loads no model; ``FaceEngine`` and friends load lazily on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
