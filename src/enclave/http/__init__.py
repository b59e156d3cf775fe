"""The HTTP server: aiohttp owns the socket; REST requests go to the ASGI (FastAPI) app through
a small bridge, and `/api/v1/ws` is served by aiohttp's own WebSocket (the fast path)."""
