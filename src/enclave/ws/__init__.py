"""The WebSocket protocol (docs/protocol.md) and its endpoint."""
