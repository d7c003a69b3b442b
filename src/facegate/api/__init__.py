"""The facegate service: REST and WebSocket API (FastAPI), served by ``facegate serve``."""
