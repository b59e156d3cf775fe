"""Pure models, errors and rules: no I/O."""
