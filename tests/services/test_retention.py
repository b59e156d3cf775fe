"""Retention runs on both backends, with a fake clock: the dry run equals the run, legal holds
keep what they hold until released, purged text is gone from the database and from a backup
made before the run, the receipt is in a verifiable audit log, an interrupted run resumes,
the lease keeps two runs from purging at once, and the schedule is a periodic job that a node's
worker runs once per period (none with `retention.interval_minutes = 0`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave.app import open_context
from enclave.cli.main import main
from enclave.config import Config, load_config
from enclave.crypto.keyring import FileKeyring, KeyringError
from enclave.domain import wire
from enclave.domain.errors import Conflict
from enclave.domain.ids import conversation_scope
from enclave.domain.models import ConversationKind
from enclave.services import accounts, audit, conversations, jobs, messages
from enclave.services.context import Context, SystemClock
from enclave.services.retention import plan as retention_plan
from enclave.services.retention import run as retention_run
from enclave.services.retention import schedule
from enclave.services.runtime import PURGE_NAME, Node, default_registry
from enclave.services.sealer import DataKeys
from enclave.storage import accounts as account_store
from enclave.storage import audit as audit_store
from enclave.storage import keys as key_store
from enclave.storage import retention as retention_store
from enclave.storage.base import Tx
from tests.api.helpers import API, new_conv, people, post, send
from tests.conftest import FAST_AUTH, TEST_PASSWORD, Person, World, make_config
from tests.services.test_encryption import (
    _backup,
    _checkpoint,
    _drop_schema,
    _open_backup,
    _read_page,
    _stored_bytes,
)

DAY = 86_400_000
T0 = 1_800_000_000_000
WORDS = ["obsidianquokka", "lanternfjord", "periwinkleabacus", "保留期限秘密"]


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def now_ms(self) -> int:
        return self.now


@pytest.fixture
def clock(ctx: Context) -> FakeClock:
    fake = FakeClock()
    ctx.clock = fake
    return fake


async def _relogin(world: World, *who: Person) -> None:
    """Sessions expire while the fake clock jumps months ahead: log in again."""
    for person in who:
        token = await world.login(person.username)
        person.token = token
        person.headers = {"Authorization": f"Bearer {token}"}


async def _texts(client: httpx.AsyncClient, who: Person, conv: str) -> list[str | None]:
    resp = await client.get(f"{API}/conversations/{conv}/messages", headers=who.headers)
    assert resp.status_code == 200, resp.text
    return [m["text"] for m in resp.json()["messages"]]


async def _set_default(client: httpx.AsyncClient, owner: Person, days: int | None) -> None:
    resp = await client.put(
        f"{API}/org/retention", json={"default_days": days}, headers=owner.headers
    )
    assert resp.status_code == 200, resp.text


async def _org(ctx: Context) -> str:
    orgs = await retention_plan.all_org_ids(ctx)
    assert len(orgs) == 1
    return orgs[0]


def _audit(ctx: Context, action: str) -> Any:
    async def read() -> list[Any]:
        entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
        return [e for e in entries if e.action == action]

    return read()


async def _verify(ctx: Context) -> None:
    def work(tx: Tx) -> tuple[int, list[audit.Problem]]:
        return audit.verify_entries(ctx.keys, tx)

    checked, problems = await ctx.db.read(work)
    assert checked > 0 and problems == []


async def _live_keys(ctx: Context, conv: str) -> set[str]:
    scope = conversation_scope(conv)
    return {k.id for k in await ctx.db.read(lambda tx: key_store.live_in_scope(tx, scope, None))}


async def _row_count(ctx: Context, sql: str, *params: str) -> int:
    row = await ctx.db.read(lambda tx: tx.fetchone(sql, params))
    assert row is not None
    return int(row["n"])


async def test_dry_run_equals_the_run_and_the_receipt_is_audited(
    world: World, client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    group = await new_conv(client, alice, "group", [bob.id])
    old = await send(client, alice, group, f"old {WORDS[0]}")
    edited = await client.patch(
        f"{API}/messages/{old['id']}", json={"text": f"edited {WORDS[1]}"}, headers=alice.headers
    )
    assert edited.status_code == 200, edited.text
    liked = await client.put(f"{API}/messages/{old['id']}/reactions/👍", headers=bob.headers)
    assert liked.status_code == 200, liked.text
    root = await send(client, bob, group, "thread root")
    await send(client, alice, group, "early reply", root=root["id"])
    dm = await new_conv(client, alice, "dm", [bob.id])
    await send(client, alice, dm, f"dm {WORDS[2]}")
    await send(client, bob, dm, f"dm {WORDS[3]}")
    keep = await new_conv(client, alice, "channel", [], name="archive")
    await send(client, alice, keep, "kept forever")

    clock.now = T0 + 80 * DAY
    await _relogin(world, alice, bob, owner)
    await send(client, bob, group, "late reply keeps the thread", root=root["id"])
    clock.now = T0 + 100 * DAY
    await _relogin(world, alice, bob, owner)
    await send(client, alice, group, "new")
    await _set_default(client, owner, 30)
    forever = await client.put(
        f"{API}/conversations/{keep}/retention", json={"mode": "forever"}, headers=owner.headers
    )
    assert forever.status_code == 200, forever.text
    dm_keys = await _live_keys(ctx, dm)
    group_keys = await _live_keys(ctx, group)

    org = await _org(ctx)
    planned = await retention_plan.plan(ctx, org)
    preview = await client.get(f"{API}/org/retention/preview", headers=owner.headers)
    assert preview.status_code == 200, preview.text
    assert preview.json() == wire.retention_plan(planned)
    (receipt,) = await retention_run.run(ctx, audit.Actor())

    # The run did exactly what the dry run said.
    assert asdict(receipt.totals) == asdict(planned.totals)
    assert [asdict(c) for c in receipt.conversations] == [asdict(c) for c in planned.conversations]
    by_conv = {c.conversation_id: c for c in receipt.conversations}
    assert set(by_conv) == {group, dm}
    assert by_conv[dm].messages == 2 and by_conv[dm].key_ids == sorted(dm_keys)
    assert by_conv[group].messages == 1 and by_conv[group].versions == 1
    assert by_conv[group].reactions == 1
    # The thread's root is as old as the deleted message, but its newest reply is recent: the
    # thread stays whole, and so does the data key it is sealed with.
    assert set(by_conv[group].key_ids) == set()
    assert await _live_keys(ctx, group) == group_keys
    assert await _texts(client, alice, group) == [
        "thread root",
        "early reply",
        "late reply keeps the thread",
        "new",
    ]
    assert await _texts(client, alice, dm) == []
    assert await _texts(client, alice, keep) == ["kept forever"]
    assert receipt.kek_rotated

    # Nothing is left to do.
    assert (await retention_plan.plan(ctx, org)).conversations == []

    (entry,) = await _audit(ctx, "retention.purged")
    assert entry.details["messages"] == planned.totals.messages
    assert entry.details["key_ids"] == planned.totals.key_ids
    assert entry.details["files"] == 0
    assert entry.details["policy"] == {"default_days": 30}
    assert entry.details["as_of"] == T0 + 100 * DAY
    assert entry.org_id == org
    shredded = await _audit(ctx, "keys.shredded")
    assert [e.target_id for e in shredded] == [conversation_scope(dm)]
    assert len(await _audit(ctx, "keys.rotated")) == 1
    await _verify(ctx)


async def test_legal_holds_keep_everything_they_hold_until_released(
    world: World, client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    owner = await world.owner()
    ops = await new_conv(client, alice, "channel", [bob.id], name="ops")
    a1 = await send(client, alice, ops, "alice in ops")
    b1 = await send(client, bob, ops, "bob in ops")
    # bob "deletes" his message: it disappears for members, but the hold keeps it.
    recalled = await client.delete(f"{API}/messages/{b1['id']}", headers=bob.headers)
    assert recalled.status_code == 200, recalled.text
    group = await new_conv(client, carol, "group", [bob.id])  # bob is a member: wholly held
    await send(client, carol, group, "carol to bob")
    legal = await new_conv(client, alice, "channel", [], name="legal")
    await send(client, alice, legal, "legal matter")
    free = await new_conv(client, alice, "dm", [carol.id])
    await send(client, alice, free, "nothing holds this")

    person_hold = await client.post(
        f"{API}/compliance/holds",
        json={"kind": "person", "target_id": bob.id, "reason": "case 42"},
        headers=owner.headers,
    )
    assert person_hold.status_code == 201, person_hold.text
    conv_hold = await client.post(
        f"{API}/compliance/holds",
        json={"kind": "conversation", "target_id": legal, "reason": "case 43"},
        headers=owner.headers,
    )
    assert conv_hold.status_code == 201, conv_hold.text

    clock.now = T0 + 100 * DAY
    await _relogin(world, alice, bob, carol, owner)
    await _set_default(client, owner, 30)
    legal_keys = await _live_keys(ctx, legal)
    legal_events = await _row_count(
        ctx, "SELECT COUNT(*) AS n FROM events WHERE conversation_id = ?", legal
    )
    org = await _org(ctx)
    planned = await retention_plan.plan(ctx, org)
    (receipt,) = await retention_run.run(ctx, audit.Actor())
    assert asdict(receipt.totals) == asdict(planned.totals)
    by_conv = {c.conversation_id: c for c in receipt.conversations}
    assert by_conv[ops].messages == 1 and by_conv[ops].hidden == 1
    assert by_conv[group].held and by_conv[group].messages == 0 and by_conv[group].hidden == 1
    assert by_conv[legal].held and by_conv[legal].messages == 0 and by_conv[legal].events == 0
    assert by_conv[free].messages == 1 and by_conv[free].key_ids

    # Members see everything past retention go, held or not (a hold does not show)...
    for who in (alice, bob):
        assert await _texts(client, who, ops) == []
    assert await _texts(client, bob, group) == []
    assert await _texts(client, alice, legal) == []
    hidden = await client.get(f"{API}/messages/{b1['id']}", headers=bob.headers)
    assert hidden.status_code == 404
    # ... but what a hold holds is still stored, readable, and its keys live.
    count = "SELECT COUNT(*) AS n FROM messages WHERE id = ?"
    assert await _row_count(ctx, count, b1["id"]) == 1
    kept_text = "SELECT COUNT(*) AS n FROM messages WHERE id = ? AND text IS NOT NULL"
    assert await _row_count(ctx, kept_text, b1["id"]) == 1
    assert await _row_count(ctx, count, a1["id"]) == 0
    assert (
        await _row_count(ctx, "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?", legal)
        == 1
    )
    assert (
        await _row_count(ctx, "SELECT COUNT(*) AS n FROM events WHERE conversation_id = ?", legal)
        == legal_events + 1  # all kept, plus the `messages.purged` for members
    )
    assert not by_conv[ops].key_ids and not by_conv[group].key_ids
    assert await _live_keys(ctx, ops) and await _live_keys(ctx, legal)

    # Nobody but compliance officers and the owner learns that holds exist.
    admin = await world.person("dora", role="admin")
    for who in (bob, alice, admin):
        listed = await client.get(f"{API}/compliance/holds", headers=who.headers)
        assert listed.status_code == 404, listed.text
        gone = await client.post(
            f"{API}/compliance/holds/{person_hold.json()['id']}/release",
            json={"reason": "x"},
            headers=who.headers,
        )
        assert gone.status_code == 404

    # Releasing the holds lets the next run remove what they kept.
    for hold in (person_hold, conv_hold):
        released = await client.post(
            f"{API}/compliance/holds/{hold.json()['id']}/release",
            json={"reason": "case closed"},
            headers=owner.headers,
        )
        assert released.status_code == 200, released.text
        assert released.json()["active"] is False
    again = await retention_plan.plan(ctx, org)
    (second,) = await retention_run.run(ctx, audit.Actor())
    assert asdict(second.totals) == asdict(again.totals)
    by_conv = {c.conversation_id: c for c in second.conversations}
    assert by_conv[ops].messages == 1 and by_conv[group].messages == 1
    assert by_conv[legal].messages == 1 and by_conv[legal].events > 0
    assert await _row_count(ctx, count, b1["id"]) == 0
    assert by_conv[ops].key_ids and by_conv[legal].key_ids
    assert legal_keys and not legal_keys & await _live_keys(ctx, legal)
    await _verify(ctx)


async def test_a_retry_of_a_removed_message_answers_alike_whether_held_or_deleted(
    world: World, client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    """bob's message in `legal` (under hold) is hidden by retention, his message in `ops`
    deleted. Retrying either client_msg_id answers the same `message_expired`, posts nothing,
    and shows no text; his own data export does not have the hidden one either."""
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    ops = await new_conv(client, alice, "channel", [bob.id], name="ops")
    legal = await new_conv(client, alice, "channel", [bob.id], name="legal")
    deleted = await post(client, bob, ops, f"ops {WORDS[0]}", cmid="bob-ops-1")
    held = await post(client, bob, legal, f"legal {WORDS[1]}", cmid="bob-legal-1")
    assert deleted.status_code == held.status_code == 201, (deleted.text, held.text)
    liked = await client.put(
        f"{API}/messages/{held.json()['id']}/reactions/ok", headers=bob.headers
    )
    assert liked.status_code == 200, liked.text
    again = await post(client, bob, legal, "ignored", cmid="bob-legal-1")
    assert again.status_code == 200 and again.json()["id"] == held.json()["id"]  # a plain retry
    hold = await client.post(
        f"{API}/compliance/holds",
        json={"kind": "conversation", "target_id": legal, "reason": "case 44"},
        headers=owner.headers,
    )
    assert hold.status_code == 201, hold.text

    clock.now = T0 + 100 * DAY
    await _relogin(world, alice, bob, owner)
    await _set_default(client, owner, 30)
    (receipt,) = await retention_run.run(ctx, audit.Actor())
    by_conv = {c.conversation_id: c for c in receipt.conversations}
    assert by_conv[ops].messages == 1 and by_conv[legal].hidden == 1
    stored = "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?"
    counts = [await _row_count(ctx, stored, c) for c in (ops, legal)]
    assert counts == [0, 1]

    async def retries() -> list[httpx.Response]:
        return [
            await post(client, bob, conv, "sent again?", cmid=cmid)
            for conv in (ops, legal)
            for cmid in ("bob-ops-1", "bob-legal-1")
        ]

    answers = await retries()
    assert {(r.status_code, r.json()["error"]["code"]) for r in answers} == {
        (409, "message_expired")
    }
    assert len({r.content for r in answers}) == 1  # held and deleted alike, in either place
    assert [await _row_count(ctx, stored, c) for c in (ops, legal)] == counts
    for who in (alice, bob):
        assert await _texts(client, who, ops) == [] and await _texts(client, who, legal) == []
    # Where the sender may not look, a retry is a missing conversation, as a new send would be.
    secret = await new_conv(client, alice, "channel", [], name="secret", visibility="private")
    outside = await post(client, bob, secret, "x", cmid="bob-legal-1")
    missing = await post(client, bob, "a" * 26, "x", cmid="bob-legal-1")
    assert outside.status_code == 404 and outside.content == missing.content
    # A new client_msg_id still sends.
    assert (await post(client, bob, legal, "new", cmid="bob-legal-2")).status_code == 201

    mine = await client.post(f"{API}/users/me/export", headers=bob.headers)
    assert mine.status_code == 200, mine.text
    assert held.json()["id"] not in mine.text and WORDS[1] not in mine.text
    assert [m["text"] for m in mine.json()["messages"]] == ["new"]
    assert mine.json()["reactions"] == []

    # Once the hold is released the next run deletes the message: the answer does not change.
    released = await client.post(
        f"{API}/compliance/holds/{hold.json()['id']}/release",
        json={"reason": "closed"},
        headers=owner.headers,
    )
    assert released.status_code == 200, released.text
    clock.now = T0 + 200 * DAY
    await _relogin(world, bob)
    await retention_run.run(ctx, audit.Actor())
    assert await _row_count(ctx, stored, legal) == 0
    assert [r.content for r in await retries()] == [r.content for r in answers]


async def test_purged_text_is_in_neither_the_database_nor_a_backup_made_before(
    world: World,
    client: httpx.AsyncClient,
    ctx: Context,
    config: Config,
    clock: FakeClock,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    doomed = await new_conv(client, alice, "group", [bob.id])
    first = await send(client, alice, doomed, WORDS[0])
    await client.patch(
        f"{API}/messages/{first['id']}", json={"text": WORDS[1]}, headers=alice.headers
    )
    await send(client, bob, doomed, WORDS[2], root=first["id"])
    sealed = await ctx.db.read(
        lambda tx: [
            str(r["text"])
            for r in tx.fetchall("SELECT text FROM messages WHERE conversation_id = ?", (doomed,))
        ]
    )
    clock.now = T0 + 100 * DAY
    await _relogin(world, alice, bob, owner)
    await _set_default(client, owner, 30)
    backup = await asyncio.to_thread(_backup, config, tmp_path)  # pg_dump: off the loop

    (receipt,) = await retention_run.run(ctx, audit.Actor())
    assert receipt.totals.messages == 2 and receipt.totals.key_ids and receipt.kek_rotated
    if not config.uses_postgres:
        await asyncio.to_thread(_checkpoint, config.sqlite_path())
    stored = await asyncio.to_thread(_stored_bytes, config)
    assert b"alice" in stored
    for word in WORDS[:3]:
        assert word.encode() not in stored
    for value in sealed:  # not even the ciphertexts are left
        assert value.split(":", 2)[2].encode() not in stored

    # The backup still has the rows, but today's keyring cannot open them: the keys were
    # shredded and the KEK that wrapped them in the backup was destroyed.
    pg_url = request.getfixturevalue("postgres_url") if config.uses_postgres else ""
    reader = DataKeys(FileKeyring(config.keyring_path()), epoch_days=30)
    db, restored = await _open_backup(config, backup, reader, pg_url)
    try:
        with pytest.raises(KeyringError):
            await _read_page(db, doomed)
    finally:
        await db.close()
        if restored:
            await asyncio.to_thread(_drop_schema, pg_url, restored)
    await _verify(ctx)


async def test_an_interrupted_run_resumes_and_its_receipt_counts_both_parts(
    world: World, client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    dm = await new_conv(client, alice, "dm", [bob.id])
    for i in range(5):
        await send(client, alice, dm, f"old {i}")
    clock.now = T0 + 100 * DAY
    await _relogin(world, owner)
    await _set_default(client, owner, 30)
    org = await _org(ctx)
    planned = await retention_plan.plan(ctx, org)
    assert planned.totals.messages == 5

    with pytest.raises(retention_run.Interrupted):
        await retention_run.run(ctx, audit.Actor(), batch_size=2, max_batches=1)
    unfinished = await ctx.db.read(lambda tx: retention_store.unfinished_run(tx, org))
    assert unfinished is not None and unfinished.as_of == planned.as_of
    left = "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?"
    assert await _row_count(ctx, left, dm) == 3
    assert await _audit(ctx, "retention.purged") == []
    # The dry run now reports what is left of the interrupted run.
    assert (await retention_plan.plan(ctx, org)).totals.messages == 3

    clock.now += DAY  # resuming later still uses the interrupted run's cutoffs
    (receipt,) = await retention_run.run(ctx, audit.Actor(), batch_size=2)
    assert asdict(receipt.totals) == asdict(planned.totals)
    assert [asdict(c) for c in receipt.conversations] == [asdict(c) for c in planned.conversations]
    assert await _row_count(ctx, left, dm) == 0
    assert len(await _audit(ctx, "retention.purged")) == 1
    await _verify(ctx)


async def test_the_lease_lets_one_run_purge_at_a_time(
    world: World, client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    dm = await new_conv(client, alice, "dm", [bob.id])
    await send(client, alice, dm, "old")
    clock.now = T0 + 100 * DAY
    await _relogin(world, owner)
    await _set_default(client, owner, 30)

    results = await asyncio.gather(
        retention_run.run(ctx, audit.Actor(), holder="node-a"),
        retention_run.run(ctx, audit.Actor(), holder="node-b"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Conflict)]
    done = [r for r in results if isinstance(r, list)]
    assert len(refused) == 1 and refused[0].code == "retention_running"
    assert len(done) == 1 and done[0][0].totals.messages == 1
    assert len(await _audit(ctx, "retention.purged")) == 1

    # A node that died holding the lease blocks others until the lease expires.
    lease_ms = ctx.config.retention.lease_seconds * 1000
    await ctx.db.write(
        lambda tx: retention_store.take_lease(
            tx, retention_run.LEASE, "dead-node", clock.now, clock.now + lease_ms
        )
    )
    with pytest.raises(Conflict):
        await retention_run.run(ctx, audit.Actor(), holder="node-a")
    clock.now += lease_ms
    (quiet,) = await retention_run.run(ctx, audit.Actor(), holder="node-a")
    assert quiet.totals.messages == 0 and quiet.audit_seq is None  # nothing to do: no receipt
    assert len(await _audit(ctx, "retention.purged")) == 1


def test_the_cli_dry_run_then_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`enclave retention run --dry-run` reports what `enclave retention run` then deletes."""
    for key, value in FAST_AUTH.items():
        monkeypatch.setenv("ENCLAVE_" + key.replace(".", "_").upper(), str(value))
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["init", *data]) == 0
    config = load_config(None, overrides={"server.data_dir": tmp_path / "data"})

    async def seed() -> None:
        async with open_context(config) as ctx:
            clock = FakeClock()
            clock.now = SystemClock().now_ms() - 200 * DAY
            ctx.clock = clock
            bob = await accounts.create_user(
                ctx, None, username="bob", password=TEST_PASSWORD, display_name="Bob"
            )
            carol = await accounts.create_user(
                ctx, None, username="carol", password=TEST_PASSWORD, display_name="Carol"
            )
            made = await conversations.create(
                ctx, bob, kind=ConversationKind.DM, member_ids=[carol.id]
            )
            for i in range(2):
                await messages.send(
                    ctx,
                    bob,
                    made.conversation.conversation.id,
                    client_msg_id=f"c{i}",
                    text=f"old {i}",
                )
            org = await ctx.db.read(account_store.first_org)
            assert org is not None
            await ctx.db.write(lambda tx: retention_store.set_org_days(tx, org.id, 30, None, 0))

    asyncio.run(seed())
    capsys.readouterr()
    assert main(["retention", "run", "--dry-run", *data]) == 0
    dry = capsys.readouterr().out
    assert "messages 2 (seq 2..3)" in dry and "(dry run)" in dry, dry
    assert main(["retention", "run", "--json", *data]) == 0
    (receipt,) = json.loads(capsys.readouterr().out)
    assert receipt["totals"]["messages"] == 2 and receipt["kek_rotated"]
    assert main(["retention", "run", "--dry-run", "--json", *data]) == 0
    (after,) = json.loads(capsys.readouterr().out)
    assert after["conversations"] == [] and after["totals"]["messages"] == 0


async def _retention_jobs(ctx: Context) -> list[jobs.Job]:
    page = await jobs.list_jobs(ctx, None, kind=schedule.NAME, limit=100)
    return page.jobs


async def test_the_schedule_runs_retention_once_per_period_on_the_job_queue(
    world: World, client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    """A server's node (its default registry, a real worker) runs retention once per
    `retention.interval_minutes` of the (fake) clock, as the periodic job `retention.run`."""
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    dm = await new_conv(client, alice, "dm", [bob.id])
    await send(client, alice, dm, "old")
    clock.now = T0 + 100 * DAY
    await _relogin(world, alice, owner)
    await _set_default(client, owner, 30)
    kind = schedule.kind(ctx.config)
    assert kind is not None and kind.every_seconds == 60 * ctx.config.retention.interval_minutes
    period_ms = kind.every_seconds * 1000
    node = Node(ctx)
    await node.start()
    try:

        async def receipts(n: int) -> bool:
            return len(await _audit(ctx, "retention.purged")) >= n

        await _until(lambda: receipts(1))
        (first,) = await _audit(ctx, "retention.purged")
        assert first.details["messages"] == 1 and first.actor_id is None
        first_period = clock.now // period_ms
        await _until(lambda: _done(ctx, {jobs.period_key(kind, first_period)}))
        # The same period: the worker polls on, but no second job is queued.
        await asyncio.sleep(2.5 * ctx.config.jobs.poll_seconds)
        assert len(await _retention_jobs(ctx)) == 1

        await send(client, alice, dm, "old by a later period")
        clock.now += 31 * DAY + period_ms
        await _until(lambda: receipts(2))
        second = (await _audit(ctx, "retention.purged"))[1]
        assert second.details["messages"] == 1 and second.actor_id is None
        # The queue's clean-up may have removed the first period's finished job by now.
        second_key = jobs.period_key(kind, clock.now // period_ms)
        await _until(lambda: _done(ctx, {second_key}))
    finally:
        await node.close()
    assert [j.key for j in await _retention_jobs(ctx)].count(second_key) == 1
    left = "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?"
    assert await _row_count(ctx, left, dm) == 0


async def test_a_node_stopped_mid_run_releases_the_job_and_the_next_node_resumes_the_run(
    world: World,
    client: httpx.AsyncClient,
    ctx: Context,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM (Node.close) in the middle of a scheduled run releases its job, the attempt not
    spent; the next node runs the job again, which resumes the unfinished run: one receipt."""
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    carol = (await people(world, "carol"))[0]
    first = await new_conv(client, alice, "dm", [bob.id])
    second = await new_conv(client, alice, "dm", [carol.id])
    for conv in (first, second):
        await send(client, alice, conv, "old")
    clock.now = T0 + 100 * DAY
    await _relogin(world, owner)
    await _set_default(client, owner, 30)
    org = await _org(ctx)
    planned = await retention_plan.plan(ctx, org)
    assert planned.totals.messages == 2

    stuck = asyncio.Event()
    shred = retention_run._OrgRun.shred

    async def stop_after_the_first_conversation(self: Any, *args: Any) -> None:
        stuck.set()
        await asyncio.Event().wait()  # until the node is stopped

    monkeypatch.setattr(retention_run._OrgRun, "shred", stop_after_the_first_conversation)
    node = Node(ctx)
    await node.start()
    try:
        await asyncio.wait_for(stuck.wait(), 20)
    finally:
        await node.close()
    (job,) = await _retention_jobs(ctx)
    assert job.state == "queued" and job.attempts == 0, job
    unfinished = await ctx.db.read(lambda tx: retention_store.unfinished_run(tx, org))
    assert unfinished is not None and unfinished.as_of == planned.as_of
    assert await _audit(ctx, "retention.purged") == []

    monkeypatch.setattr(retention_run._OrgRun, "shred", shred)
    clock.now += 60_000  # later, within the same period
    node = Node(ctx)
    await node.start()
    try:
        await _until(lambda: _done(ctx, {job.key or ""}))
    finally:
        await node.close()
    (receipt,) = await _audit(ctx, "retention.purged")
    assert receipt.details["run_id"] == unfinished.id
    assert receipt.details["as_of"] == planned.as_of
    assert receipt.details["messages"] == 2


async def _done(ctx: Context, keys: set[str]) -> bool:
    """The retention jobs of these periods are done (and there is one per period)."""
    found = [j for j in await _retention_jobs(ctx) if j.key in keys]
    return len(found) == len(keys) and all(j.state == "done" for j in found)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def test_with_interval_0_no_retention_job_is_ever_queued(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else ""
    config = make_config(
        tmp_path, url, **{"retention.interval_minutes": 0, "jobs.poll_seconds": 0.02}
    )
    assert schedule.kind(config) is None
    assert schedule.NAME not in {k.name for k in default_registry(config)}
    async with open_context(config) as ctx:
        node = Node(ctx)
        await node.start()
        try:
            # The worker keeps the other periodic kinds' schedule (the queue's clean-up)...
            async def purge_queued() -> bool:
                page = await jobs.list_jobs(ctx, None, kind=PURGE_NAME, limit=10)
                return bool(page.jobs)

            await _until(purge_queued)
            await asyncio.sleep(0.3)
        finally:
            await node.close()
        # ... but never queues retention.
        assert await _retention_jobs(ctx) == []
