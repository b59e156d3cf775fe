"""Use cases: the only code that changes state. Each state change is one function that validates,
writes in one transaction, and publishes its events after commit."""
