"""Event bus adapters: in-process for one node (Redis across nodes comes with scale-out)."""
