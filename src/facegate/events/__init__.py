"""Events: what happened in front of a camera or a stream, fanned out to whoever listens."""
