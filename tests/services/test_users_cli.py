"""`enclave users create | list --org` on both backends: with one organization `--org` may be
left out; with several, a command without it is refused with the organizations listed, and
with it the accounts go to (and are listed from) the organization named, by id or by name."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import httpx
import pytest

from enclave.cli import main as cli
from enclave.config import Config
from enclave.services import orgs
from enclave.services.context import Context
from enclave.storage import accounts as account_store
from tests.api.helpers import new_conv, people, send
from tests.conftest import World
from tests.services.test_export_cli import _location

PASSWORD = "a long enough passphrase"


class Cli:
    """Runs `enclave …` in this process against the test's database."""

    def __init__(
        self, config: Config, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch
    ) -> None:
        self.config, self.capsys, self.mp = config, capsys, mp

    async def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.mp.setattr("sys.stdin", io.StringIO(stdin))
        code = await asyncio.to_thread(cli.main, [*args, *_location(self.config)])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


def usernames(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines()}


async def test_users_commands_name_the_organization_when_there_are_several(
    world: World,
    client: httpx.AsyncClient,
    ctx: Context,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = Cli(config, capsys, monkeypatch)
    owner = await world.owner()

    # One organization: --org may be left out.
    code, out, err = await run("users", "create", "carol", "--password-stdin", stdin=PASSWORD)
    assert code == 0, err
    assert re.search(r"^created carol \(member\) id=\w+ in ", out), out
    code, out, err = await run("users", "list")
    assert code == 0, err
    assert usernames(out) == {owner.username, "carol"}

    acme = await orgs.create_org(ctx, "Acme Corp", "wile")
    first = await ctx.db.read(account_store.first_org)
    assert first is not None

    # Several: refused without --org, naming every organization; nothing is created.
    for args in (("users", "create", "dave", "--password-stdin"), ("users", "list")):
        code, out, err = await run(*args, stdin=PASSWORD)
        assert code == 1 and out == "", (code, out, err)
        assert "org_required" in err and "there are 2 organizations" in err, err
        for org in (first, acme.org):
            assert f"{org.id} ({org.name})" in err, err
        assert "Traceback" not in err
    assert await ctx.db.read(lambda tx: account_store.user_with_hash(tx, "dave")) is None

    # Named by id, or by name (case ignored): the account goes there, and is listed only there.
    code, out, err = await run(
        "users", "create", "dave", "--org", acme.org.id, "--password-stdin", stdin=PASSWORD
    )
    assert code == 0, err
    assert out.rstrip().endswith("in Acme Corp"), out
    found = await ctx.db.read(lambda tx: account_store.user_with_hash(tx, "dave"))
    assert found is not None and found[0].org_id == acme.org.id
    code, out, err = await run("users", "list", "--org", "acme corp")
    assert code == 0, err
    assert usernames(out) == {"wile", "dave"}
    code, out, err = await run("users", "list", "--all", "--org", first.id)
    assert code == 0, err
    assert usernames(out) == {owner.username, "carol"}

    # Unknown, or a name two organizations share: refused.
    code, out, err = await run("users", "list", "--org", "Globex")
    assert code == 1 and "not_found" in err and "Globex" in err, err
    twin = await orgs.create_org(ctx, "ACME corp", "road")
    code, out, err = await run("users", "list", "--org", "Acme Corp")
    assert code == 1 and "org_required" in err, err
    assert "2 organizations are named 'Acme Corp'" in err, err
    assert acme.org.id in err and twin.org.id in err and first.id not in err, err
    code, out, err = await run("users", "list", "--org", twin.org.id)
    assert code == 0 and usernames(out) == {"road"}, err


async def test_export_command_names_the_organization_when_there_are_several(
    world: World,
    client: httpx.AsyncClient,
    ctx: Context,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    run = Cli(config, capsys, monkeypatch)
    alice, bob = await people(world, "alice", "bob")
    dm = await new_conv(client, alice, "dm", [bob.id])
    await send(client, alice, dm, "first organization's words")
    first = await ctx.db.read(account_store.first_org)
    assert first is not None
    acme = await orgs.create_org(ctx, "Acme Corp", "wile")

    code, _out, err = await run("export", "--out", str(tmp_path / "none"))
    assert code == 1 and "org_required" in err and acme.org.id in err, err
    assert not (tmp_path / "none").exists()
    # A person of another organization is not found in the one named.
    code, _out, err = await run(
        "export", "--org", "Acme Corp", "--people", "alice", "--out", str(tmp_path / "x")
    )
    assert code == 1 and "no such person" in err, err

    code, _out, err = await run("export", "--org", "acme corp", "--out", str(tmp_path / "acme"))
    assert code == 0, err
    lines = (tmp_path / "acme" / "messages.jsonl").read_text("utf-8").splitlines()
    assert lines == []  # Acme has said nothing; the first organization's words stay out
    code, _out, err = await run("export", "--org", first.id, "--out", str(tmp_path / "first"))
    assert code == 0, err
    records = [json.loads(x) for x in (tmp_path / "first" / "messages.jsonl").open()]
    assert [r["text"] for r in records if "text" in r] == ["first organization's words"]
