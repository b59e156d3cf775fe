"""`enclave export` on both backends: the operator's eDiscovery export into a directory, with a
progress line, the same files as through the API, and an audit entry without an actor."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from pathlib import Path

import httpx
import pytest

from enclave.cli import main as cli
from enclave.config import Config
from enclave.services.context import Context
from enclave.storage import audit as audit_store
from tests.api.helpers import new_conv, people, send
from tests.conftest import World


def _location(config: Config) -> list[str]:
    args = ["--data-dir", str(config.server.data_dir)]
    if config.database.url:
        args += ["--database-url", config.database.url]
    return args


async def test_export_command_writes_the_files_and_shows_progress(
    world: World,
    client: httpx.AsyncClient,
    ctx: Context,
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    group = await new_conv(client, alice, "group", [bob.id])
    await send(client, alice, group, "第一条消息")
    await send(client, bob, group, "second")
    other = await new_conv(client, bob, "dm", [carol.id])
    await send(client, bob, other, "not alice's business")
    out = tmp_path / "case-42"

    code = await asyncio.to_thread(
        cli.main,
        [
            "export",
            *_location(config),
            "--people",
            "alice",
            "--since",
            "2000-01-01",
            "--out",
            str(out),
        ],
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "exported 2 of 2 messages (100%)" in captured.err
    assert "2 messages" in captured.out

    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["run_by"]["via"] == "cli" and manifest["counts"]["messages"] == 2
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert stat.S_IMODE((out / entry["path"]).stat().st_mode) == 0o600
    lines = (out / "messages.jsonl").read_text("utf-8").splitlines()
    texts = [json.loads(x).get("text") for x in lines]
    assert "第一条消息" in texts and "not alice's business" not in texts

    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    started = [e for e in entries if e.action == "export.ediscovery"]
    assert [e.details["stage"] for e in started] == ["started", "finished"]
    assert started[0].actor_id is None and started[0].org_id is not None

    again = await asyncio.to_thread(cli.main, ["export", *_location(config), "--out", str(out)])
    assert again == 1  # never into a directory that holds something
    unknown = await asyncio.to_thread(
        cli.main, ["export", *_location(config), "--people", "nobody", "--out", str(tmp_path / "x")]
    )
    assert unknown == 1
