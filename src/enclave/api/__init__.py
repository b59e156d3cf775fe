"""REST transport: parse, authenticate, call one service function, serialize."""
