"""Storage adapters: SQLite and PostgreSQL behind one interface (`Database`, `Tx`).

All SQL of the project lives in this package. Units of work are synchronous functions of a `Tx`;
`Database.read`/`Database.write` run them on the backend's own threads so the event loop never
waits on disk or network.
"""
