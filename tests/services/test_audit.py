"""The audit log's chain and its verification, and the alerts derived from it, on both backends.

Tampering is done the way an attacker with database access (and without the keyring) would:
raw SQL on the tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from enclave.app import open_context
from enclave.config import Config
from enclave.crypto import keyring
from enclave.domain.audit import GENESIS, AuditEntry
from enclave.services import audit, metrics
from enclave.services.context import Changes, Context, write
from enclave.storage import audit as store
from enclave.storage.base import Tx
from tests.conftest import make_config

ORG = "o" * 26
ALICE = "a" * 26
T0 = 1_700_000_000_000


@pytest.fixture
def alert_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else ""
    return make_config(
        tmp_path,
        url,
        **{
            "alerts.window_seconds": 60,
            "alerts.failed_logins_per_ip": 3,
            "alerts.failed_logins_per_account": 4,
            "alerts.deletions_per_actor": 0,
            "alerts.exports_per_actor": 2,
        },
    )


@pytest.fixture
async def actx(alert_config: Config) -> AsyncIterator[Context]:
    async with open_context(alert_config) as context:
        yield context


async def add(
    ctx: Context,
    action: str = "test.action",
    *,
    now: int | None = None,
    ip: str | None = "192.0.2.1",
    actor: str | None = ALICE,
    outcome: str = "success",
    target_type: str | None = "user",
    target_id: str | None = ALICE,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    def work(ch: Changes) -> AuditEntry:
        return audit.record(
            ctx,
            Changes(ch.tx, now if now is not None else ch.now),
            action,
            audit.Actor(org_id=ORG, user_id=actor, ip=ip),
            target=audit.Target(target_type, target_id) if target_type is not None else None,
            outcome=outcome,
            details=details,
        )

    return await write(ctx, work)


async def entries(ctx: Context) -> list[AuditEntry]:
    return await ctx.db.read(lambda tx: list(store.iterate(tx)))


async def raw(ctx: Context, sql: str, params: tuple[Any, ...] = ()) -> None:
    """What someone with the database but not the keyring can do."""

    def work(tx: Tx) -> None:
        tx.execute(sql, params)

    await ctx.db.write(work)


async def problems(ctx: Context, **kwargs: Any) -> list[tuple[int, str]]:
    result = await audit.verify(ctx.db, ctx.keys, **kwargs)
    return [(p.seq, p.kind) for p in result.problems]


async def ten(ctx: Context) -> list[AuditEntry]:
    return [await add(ctx, f"test.n{i}", details={"i": i}) for i in range(1, 11)]


async def test_every_entry_is_chained_and_the_head_follows(ctx: Context) -> None:
    made = await ten(ctx)
    stored = await entries(ctx)
    assert [e.seq for e in stored] == list(range(1, 11))
    assert stored == made
    prev = GENESIS
    for entry in stored:
        assert entry.prev_hash == prev
        assert entry.hash == keyring.mac(ctx.keys.audit_key(), entry.chained_bytes())
        prev = entry.hash
    assert await audit.head(ctx.db) == (10, prev)
    result = await audit.verify(ctx.db, ctx.keys)
    assert (result.ok, result.checked, result.head_seq, result.head_hash) == (True, 10, 10, prev)
    assert await ctx.db.read(lambda tx: audit.verify_entries(ctx.keys, tx)) == (10, [])


async def test_an_empty_log_verifies(ctx: Context) -> None:
    result = await audit.verify(ctx.db, ctx.keys)
    assert (result.ok, result.checked, result.head_seq, result.head_hash) == (True, 0, 0, GENESIS)


async def test_concurrent_appends_keep_one_chain(ctx: Context) -> None:
    await asyncio.gather(*(add(ctx, f"test.c{i}") for i in range(40)))
    result = await audit.verify(ctx.db, ctx.keys, page=7)
    assert (result.ok, result.checked) == (True, 40)


@pytest.mark.parametrize(
    ("column", "value"),
    [("details", '{"i":99}'), ("action", "test.harmless"), ("ip", "203.0.113.9"), ("at", 1)],
)
async def test_an_edited_entry_is_altered(ctx: Context, column: str, value: Any) -> None:
    await ten(ctx)
    await raw(ctx, f"UPDATE audit_log SET {column} = ? WHERE seq = 4", (value,))  # noqa: S608
    assert await problems(ctx) == [(4, "altered")]


async def test_a_forged_hash_does_not_help(ctx: Context) -> None:
    """Recomputing the hash needs the audit key; a plain SHA-256 is still altered, and the next
    entry's link is not reported twice."""
    await ten(ctx)
    await raw(ctx, "UPDATE audit_log SET details = ?, hash = ? WHERE seq = 4", ("{}", "f" * 64))
    assert await problems(ctx) == [(4, "altered")]


async def test_a_deleted_entry_is_missing(ctx: Context) -> None:
    await ten(ctx)
    await raw(ctx, "DELETE FROM audit_log WHERE seq IN (4, 5)")
    result = await audit.verify(ctx.db, ctx.keys)
    assert [(p.seq, p.kind, p.detail) for p in result.problems] == [
        (4, "missing", "seqs 4-5 missing (deleted)")
    ]
    assert result.checked == 8


async def test_a_swapped_pair_is_reordered(ctx: Context) -> None:
    await ten(ctx)
    a, b = (await entries(ctx))[2], (await entries(ctx))[6]  # seqs 3 and 7
    swap = (
        "UPDATE audit_log SET at = ?, action = ?, actor_id = ?, target_id = ?, details = ?,"
        " prev_hash = ?, hash = ? WHERE seq = ?"
    )
    for dest, src in ((a, b), (b, a)):
        values = (src.at, src.action, src.actor_id, src.target_id, f'{{"i":{src.seq}}}')
        await raw(
            ctx,
            swap,
            (*values, src.prev_hash, src.hash, dest.seq),
        )
    result = await audit.verify(ctx.db, ctx.keys)
    assert [(p.seq, p.kind, p.detail) for p in result.problems] == [
        (3, "reordered", "holds the entry of seq 7"),
        (7, "reordered", "holds the entry of seq 3"),
    ]


async def test_an_inserted_entry_is_altered(ctx: Context) -> None:
    await ten(ctx)
    forged = AuditEntry(
        seq=11, at=T0, action="test.forged", prev_hash=(await entries(ctx))[-1].hash
    )
    await ctx.db.write(lambda tx: store.append(tx, forged))  # a hash made without the key
    assert await problems(ctx) == [(11, "altered")]


async def test_a_cut_off_tail_is_truncated_unless_the_head_is_rewound(ctx: Context) -> None:
    made = await ten(ctx)
    await raw(ctx, "DELETE FROM audit_log WHERE seq > 8")
    assert await problems(ctx) == [(9, "truncated")]
    # Rewinding the head consistently leaves a valid, shorter chain: only an anchor shows it.
    await raw(ctx, "UPDATE audit_head SET seq = 8, hash = ? WHERE id = 1", (made[7].hash,))
    assert await problems(ctx) == []
    anchors = {made[4].seq: made[4].hash, made[9].seq: made[9].hash}
    result = await audit.verify(ctx.db, ctx.keys, anchors=anchors)
    assert [(p.seq, p.kind) for p in result.problems] == [(10, "anchor")]
    assert "beyond the end" in result.problems[0].detail


async def test_an_anchor_that_differs_is_reported(ctx: Context) -> None:
    made = await ten(ctx)
    assert await problems(ctx, anchors={5: made[4].hash}) == []
    assert await problems(ctx, anchors={5: made[5].hash}) == [(5, "anchor")]


async def test_verify_streams_problems_and_pages(ctx: Context) -> None:
    await ten(ctx)
    await raw(ctx, "UPDATE audit_log SET outcome = 'x' WHERE seq IN (2, 9)")
    seen: list[int] = []
    result = await audit.verify(ctx.db, ctx.keys, page=3, on_problem=lambda p: seen.append(p.seq))
    assert seen == [2, 9] and result.problem_count == 2 and result.checked == 10


async def test_a_chain_from_another_key_is_altered_everywhere(ctx: Context) -> None:
    await add(ctx)
    await add(ctx)
    other = keyring.EnvKeyring(keyring.generate_encoded_key())
    result = await audit.verify(ctx.db, other)
    assert [(p.seq, p.kind) for p in result.problems] == [(1, "altered"), (2, "altered")]


# -- alerts -------------------------------------------------------------------------------------


def _sample(name: str, **labels: str) -> float:
    return metrics.sample(name, labels)


async def alerts_of(ctx: Context) -> list[AuditEntry]:
    return [e for e in await entries(ctx) if e.action.startswith("alert.")]


async def test_failed_logins_from_one_address_alert_once_per_window(actx: Context) -> None:
    before = _sample("enclave_alerts_total", rule="failed_logins_ip")
    failed_before = _sample("enclave_failed_logins_total")

    async def fail(at: int, ip: str = "198.51.100.7", name: str = "bob") -> AuditEntry:
        return await add(
            actx,
            "auth.login",
            now=at,
            ip=ip,
            actor=None,
            outcome="failure",
            target_type="username",
            target_id=name,
        )

    await fail(T0)
    await fail(T0 + 1000, name="carol")
    assert await alerts_of(actx) == []
    third = await fail(T0 + 2000, name="dave")
    [alert] = await alerts_of(actx)
    assert alert.seq == third.seq + 1
    assert (alert.action, alert.outcome, alert.target_type, alert.target_id, alert.ip) == (
        "alert.failed_logins_ip",
        "alert",
        "ip",
        "198.51.100.7",
        "198.51.100.7",
    )
    assert alert.details == {
        "count": 3,
        "window_seconds": 60,
        "first_at": T0,
        "trigger_seq": third.seq,
    }
    assert alert.org_id == ORG and alert.actor_id is None
    # More failures inside the same window raise nothing new; other addresses count apart.
    for i in range(5):
        await fail(T0 + 3000 + i, name=f"user{i}")
    await fail(T0 + 4000, ip="198.51.100.8")
    assert len(await alerts_of(actx)) == 1
    # A window later, the burst goes on: one more alert.
    for i in range(3):
        await fail(T0 + 63_000 + i, name=f"late{i}")
    assert [a.action for a in await alerts_of(actx)] == ["alert.failed_logins_ip"] * 2
    assert _sample("enclave_alerts_total", rule="failed_logins_ip") == before + 2
    assert _sample("enclave_failed_logins_total") == failed_before + 12
    assert (await audit.verify(actx.db, actx.keys)).ok


async def test_failed_logins_for_one_account_alert_across_addresses(actx: Context) -> None:
    for i in range(4):
        await add(
            actx,
            "auth.login",
            now=T0 + i,
            ip=f"203.0.113.{i}",
            actor=None,
            outcome="failure",
            target_type="user",
            target_id=ALICE,
        )
    [alert] = await alerts_of(actx)
    assert (alert.action, alert.target_type, alert.target_id, alert.ip) == (
        "alert.failed_logins_account",
        "user",
        ALICE,
        None,
    )


async def test_successful_logins_and_spread_out_failures_do_not_alert(actx: Context) -> None:
    for i in range(6):
        await add(actx, "auth.login", now=T0 + i, outcome="success")
    for i in range(6):  # one every 40 s: never three within a minute
        await add(actx, "auth.login", now=T0 + i * 40_000, outcome="failure", target_id=f"u{i}")
    assert await alerts_of(actx) == []


async def test_mass_export_alerts_and_a_rule_can_be_switched_off(actx: Context) -> None:
    before = _sample("enclave_alerts_total", rule="mass_export")
    await add(actx, "export.conversation", now=T0, target_type="conversation", target_id="c1")
    await add(actx, "export.user_data", now=T0 + 1, target_type="user", target_id="u1")
    [alert] = await alerts_of(actx)
    assert (alert.action, alert.target_type, alert.target_id) == (
        "alert.mass_export",
        "user",
        ALICE,
    )
    assert _sample("enclave_alerts_total", rule="mass_export") == before + 1
    # alerts.deletions_per_actor = 0 here: the rule is off.
    for i in range(20):
        await add(actx, "message.recalled", now=T0 + 10 + i, target_type="message")
    assert len(await alerts_of(actx)) == 1


async def test_audit_entries_are_counted_by_action_and_outcome(ctx: Context) -> None:
    labels = {"action": "test.counted", "outcome": "failure"}
    before = metrics.sample("enclave_audit_entries_total", labels)
    await add(ctx, "test.counted", outcome="failure")
    await add(ctx, "test.counted", outcome="failure")
    assert metrics.sample("enclave_audit_entries_total", labels) == before + 2
