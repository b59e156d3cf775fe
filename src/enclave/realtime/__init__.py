"""Live delivery on one node: connections, their subscriptions, fan-out and catch-up."""
