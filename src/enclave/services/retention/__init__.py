"""Retention: policies, the plan of a run (dry run), the run itself, and its schedule.

An organization has a default (keep forever, or N days) and conversations may override it
(forever, or N days). A run removes, per conversation, what was created before its cutoff
(`as_of - days`), as described in `enclave.storage.retention`: expired messages with their edit
history, mentions and reactions are deleted, those a legal hold preserves are hidden instead;
the event log is cut up to the last event before the cutoff (a client resuming from an older
cursor is told `resync`); the conversation's data keys of epochs wholly before the cutoff that
nothing kept still needs are shredded, and the KEK is rotated once at the end of the run, so a
backup taken before the run cannot be read with the current keyring; a `retention.purged`
receipt goes to the audit log. Connected clients get a `messages.purged` event per batch.

Modules (callers import them, this package re-exports nothing):

- `policy`: the organization's default and the per-conversation overrides;
- `plan`: what a run would do, changing nothing (`enclave retention run --dry-run`,
  `GET /api/v1/org/retention/preview`), with the same conditions the run uses;
- `run`: the run, in batches under a cluster-wide lease, resumable when interrupted;
- `schedule`: the periodic job kind (`retention.run`) the job queue runs every
  `retention.interval_minutes`.
"""
