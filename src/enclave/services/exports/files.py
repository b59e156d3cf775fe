"""The files of an eDiscovery export: `messages.jsonl`, one `.eml` per conversation-day, and
`manifest.json` with the SHA-256 and size of every other file.

Blocking file I/O: the export job calls these methods through `asyncio.to_thread`. Exports
hold plaintext, so every directory is created with mode 0700 and every file with 0600.

The `.eml` files (RFC 5322, written with the standard library's `email` package): one per
conversation and UTC day, a `multipart/mixed` message whose first part is a plain-text summary
of the day and whose further parts are one `message/rfc822` per chat message, in seq order.
Each embedded message has `From` (the sender's username at `enclave.invalid`), `Date`,
`Message-ID`, `In-Reply-To` for thread replies, `X-Enclave-*` headers (conversation, seq,
edited, recalled) and a UTF-8 `text/plain` body: the text, then any earlier versions and
reactions. A mail client or review tool shows one mail per chat message, grouped by day.
"""

from __future__ import annotations

import email.policy
import hashlib
import io
import os
import shutil
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from enclave import codec
from enclave.storage.exports import ConversationRef, ExportedMessage, MembershipEvent

DIR_MODE = 0o700
FILE_MODE = 0o600
MAIL_DOMAIN = "enclave.invalid"
MESSAGES_FILE = "messages.jsonl"
MANIFEST_FILE = "manifest.json"


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by this account only."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)


def _open_private(path: Path) -> io.BufferedWriter:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    return os.fdopen(fd, "wb")


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def message_record(m: ExportedMessage, names: dict[str, str]) -> dict[str, Any]:
    """A message as one JSON object of `messages.jsonl` (also used by the GDPR export)."""
    return {
        "record": "message",
        "id": m.id,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender_id": m.sender_id,
        "sender_username": names.get(m.sender_id),
        "created_at": m.created_at,
        "text": m.text,
        "thread_root_id": m.thread_root_id,
        "reply_count": m.reply_count,
        "edited_at": m.edited_at,
        "versions": [
            {"version": v.version, "text": v.text, "created_at": v.created_at} for v in m.versions
        ],
        "recalled": m.recalled_at is not None,
        "recalled_at": m.recalled_at,
        "mentions": m.mentions,
        "reactions": [
            {
                "user_id": r.user_id,
                "username": names.get(r.user_id),
                "emoji": r.emoji,
                "created_at": r.created_at,
            }
            for r in m.reactions
        ],
    }


class ExportWriter:
    """Writes one export into `root` (which must not exist yet, or be empty)."""

    def __init__(self, root: Path) -> None:
        make_private_dir(root)
        if any(root.iterdir()):
            raise FileExistsError(f"{root} is not empty")
        self.root = root
        self._jsonl = _open_private(root / MESSAGES_FILE)
        self._conv: ConversationRef | None = None
        self._day: str | None = None
        self._mails: list[EmailMessage] = []
        self._day_counts = {"messages": 0, "edited": 0, "recalled": 0}
        self.eml_files = 0

    def _line(self, record: dict[str, Any]) -> None:
        self._jsonl.write(codec.dumps(record) + b"\n")

    def begin_conversation(self, conv: ConversationRef, member_ids: list[str]) -> None:
        self._flush_day()
        self._conv = conv
        self._line(
            {
                "record": "conversation",
                "id": conv.id,
                "kind": conv.kind,
                "name": conv.name,
                "created_at": conv.created_at,
                "member_ids": member_ids,
            }
        )

    def add_messages(self, page: list[ExportedMessage], names: dict[str, str]) -> None:
        for m in page:
            self._line(message_record(m, names))
            day = _day(m.created_at)
            if day != self._day:
                self._flush_day()
                self._day = day
            self._mails.append(self._mail(m, names))
            self._day_counts["messages"] += 1
            self._day_counts["edited"] += int(m.edited_at is not None)
            self._day_counts["recalled"] += int(m.recalled_at is not None)

    def add_membership(self, events: list[MembershipEvent], names: dict[str, str]) -> None:
        for e in events:
            self._line(
                {
                    "record": "membership",
                    "conversation_id": e.conversation_id,
                    "seq": e.seq,
                    "event": e.type,
                    "actor_id": e.actor_id,
                    "actor_username": names.get(e.actor_id),
                    "created_at": e.created_at,
                    "data": e.data,
                }
            )

    def _mail(self, m: ExportedMessage, names: dict[str, str]) -> EmailMessage:
        mail = EmailMessage()
        sender = names.get(m.sender_id, m.sender_id)
        mail["From"] = f"{sender} <{m.sender_id}@{MAIL_DOMAIN}>"
        mail["Date"] = format_datetime(datetime.fromtimestamp(m.created_at / 1000, UTC))
        mail["Message-ID"] = f"<{m.id}@{MAIL_DOMAIN}>"
        if m.thread_root_id:
            mail["In-Reply-To"] = f"<{m.thread_root_id}@{MAIL_DOMAIN}>"
        mail["Subject"] = self._subject()
        mail["X-Enclave-Conversation"] = m.conversation_id
        mail["X-Enclave-Seq"] = str(m.seq)
        if m.edited_at is not None:
            mail["X-Enclave-Edited"] = iso(m.edited_at) or ""
        if m.recalled_at is not None:
            mail["X-Enclave-Recalled"] = iso(m.recalled_at) or ""
        lines = [m.text if m.text is not None else "[text not available: erased or shredded]"]
        if m.versions:
            lines += ["", "--- earlier versions ---"]
            lines += [f"[{v.version}] {iso(v.created_at)}: {v.text}" for v in m.versions]
        if m.reactions:
            lines += ["", "--- reactions ---"]
            lines += [
                f"{r.emoji} {names.get(r.user_id, r.user_id)} {iso(r.created_at)}"
                for r in m.reactions
            ]
        mail.set_content("\n".join(lines) + "\n", charset="utf-8")
        return mail

    def _subject(self) -> str:
        conv = self._conv
        assert conv is not None
        label = conv.name or f"{conv.kind} {conv.id}"
        return f"{label}, {self._day}"

    def _flush_day(self) -> None:
        if not self._mails or self._conv is None or self._day is None:
            self._mails = []
            return
        conv = self._conv
        digest = EmailMessage()
        digest["From"] = f"Enclave export <export@{MAIL_DOMAIN}>"
        midnight = datetime.strptime(self._day, "%Y-%m-%d").replace(tzinfo=UTC)
        digest["Date"] = format_datetime(midnight)
        digest["Subject"] = self._subject()
        digest["Message-ID"] = f"<{conv.id}.{self._day}@{MAIL_DOMAIN}>"
        digest["X-Enclave-Conversation"] = conv.id
        counts = self._day_counts
        digest.set_content(
            f"Conversation {conv.id} ({conv.kind}{', ' + conv.name if conv.name else ''}), "
            f"{self._day} (UTC): {counts['messages']} messages, {counts['edited']} edited, "
            f"{counts['recalled']} recalled. Each message is attached as message/rfc822.\n",
            charset="utf-8",
        )
        for mail in self._mails:
            digest.add_attachment(mail)
        folder = self.root / "eml" / conv.id
        make_private_dir(self.root / "eml")
        make_private_dir(folder)
        path = folder / f"{self._day}.eml"
        n = 2
        while path.exists():  # a clock step back may revisit a day: never overwrite
            path = folder / f"{self._day}-{n}.eml"
            n += 1
        with _open_private(path) as fh:
            fh.write(digest.as_bytes(policy=email.policy.SMTP))
        self.eml_files += 1
        self._mails = []
        self._day_counts = {"messages": 0, "edited": 0, "recalled": 0}

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Flush the last day, close `messages.jsonl`, and write the manifest of every file."""
        self._flush_day()
        self._jsonl.close()
        manifest = {
            **manifest,
            "counts": {**manifest.get("counts", {}), "eml_files": self.eml_files},
        }
        files = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            files.append(
                {
                    "path": path.relative_to(self.root).as_posix(),
                    "bytes": path.stat().st_size,
                    "sha256": sha256_of(path),
                }
            )
        full = {**manifest, "files": files}
        with _open_private(self.root / MANIFEST_FILE) as fh:
            fh.write(codec.dumps(full))
        return full

    def abort(self) -> None:
        if not self._jsonl.closed:
            self._jsonl.close()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_zip(source: Path, target: Path) -> None:
    """Pack every file under `source` into the zip `target` (mode 0600)."""
    with _open_private(target) as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(source).as_posix())


def remove_tree(path: Path) -> None:
    """Delete an export's directory (no error if it is gone already)."""
    shutil.rmtree(path, ignore_errors=True)
