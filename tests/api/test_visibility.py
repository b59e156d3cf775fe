"""No existence leak: whoever may not see a conversation gets exactly the answer a conversation
that does not exist would give, whatever they try. Also: tenants are sealed from each other, and
deactivated accounts stop working."""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.domain.ids import OrgId, UserId, new_id
from enclave.domain.models import Org, OrgRole, User
from enclave.storage import accounts as account_store
from enclave.storage.base import Tx
from tests.api.helpers import API, code, new_conv, people, send
from tests.conftest import TEST_PASSWORD, Person, World


@dataclass(frozen=True)
class Probe:
    """One request against a conversation (`{c}`) or a message (`{m}`) the caller may not see."""

    method: str
    path: str
    body: dict[str, Any] | None = None

    async def run(
        self, client: httpx.AsyncClient, who: Person, *, c: str, m: str, u: str
    ) -> httpx.Response:
        body = dict(self.body) if self.body is not None else None
        if body is not None and "client_msg_id" in body:
            body["client_msg_id"] = secrets.token_hex(8)  # never a retry of an earlier send
        if body is not None and "user_ids" in body:
            body["user_ids"] = [u]
        return await client.request(
            self.method, API + self.path.format(c=c, m=m, u=u), json=body, headers=who.headers
        )


CONVERSATION_PROBES = [
    Probe("GET", "/conversations/{c}"),
    Probe("GET", "/conversations/{c}/messages"),
    Probe("GET", "/conversations/{c}/messages?after_seq=0&limit=5"),
    Probe("GET", "/conversations/{c}/members"),
    Probe("POST", "/conversations/{c}/messages", {"client_msg_id": "", "text": "let me in"}),
    Probe("POST", "/conversations/{c}/join"),
    Probe("POST", "/conversations/{c}/leave"),
    Probe("POST", "/conversations/{c}/members", {"user_ids": []}),
    Probe("DELETE", "/conversations/{c}/members/{u}"),
    Probe("PATCH", "/conversations/{c}/members/{u}", {"role": "owner"}),
    Probe("PATCH", "/conversations/{c}", {"topic": "pwned"}),
    Probe("POST", "/conversations/{c}/archive"),
    Probe("POST", "/conversations/{c}/unarchive"),
    Probe("POST", "/conversations/{c}/read", {"seq": 1}),
]
MESSAGE_PROBES = [
    Probe("GET", "/messages/{m}"),
    Probe("GET", "/messages/{m}/thread"),
    Probe("GET", "/messages/{m}/reactions"),
    Probe("GET", "/messages/{m}/versions"),
    Probe("PATCH", "/messages/{m}", {"text": "edited by a stranger"}),
    Probe("DELETE", "/messages/{m}"),
    Probe("PUT", "/messages/{m}/reactions/x"),
    Probe("DELETE", "/messages/{m}/reactions/ok"),
]


async def snapshot(client: httpx.AsyncClient, who: Person, conv: str) -> Any:
    """What a member sees of a conversation, to check that probes changed nothing."""
    parts = []
    for path in ("", "/messages", "/members"):
        resp = await client.get(f"{API}/conversations/{conv}{path}", headers=who.headers)
        assert resp.status_code == 200, resp.text
        parts.append(resp.json())
    return parts


async def assert_hidden(
    client: httpx.AsyncClient,
    who: Person,
    conv: str,
    msgs: list[str],
    member: Person,
) -> None:
    """Every probe by `who` answers byte-for-byte like the same probe on random ids."""
    cases = [(p, "") for p in CONVERSATION_PROBES] + [(p, m) for p in MESSAGE_PROBES for m in msgs]
    for probe, msg in cases:
        real = await probe.run(client, who, c=conv, m=msg, u=member.id)
        fake = await probe.run(client, who, c=new_id(), m=new_id(), u=member.id)
        where = f"{probe.method} {probe.path}"
        assert (real.status_code, fake.status_code) == (404, 404), (where, real.text)
        assert real.json()["error"]["code"] == "not_found", where
        assert real.content == fake.content, (where, real.text, fake.text)
        assert real.headers["content-type"] == fake.headers["content-type"]


# -- the acceptance check ---------------------------------------------------------------------


async def test_outsiders_cannot_tell_hidden_conversations_from_missing_ones(
    world: World, client: httpx.AsyncClient
) -> None:
    owner = await world.owner()  # an org owner is no member of what others create
    alice, bob, eve = await people(world, "alice", "bob", "eve")
    convs = {
        "private channel": await new_conv(
            client, alice, "channel", [bob.id], name="secret", visibility="private"
        ),
        "group": await new_conv(client, alice, "group", [bob.id], name="plans"),
        "dm": await new_conv(client, alice, "dm", [bob.id]),
    }
    for kind, conv in convs.items():
        root = await send(client, alice, conv, f"{kind}: hush @eve")
        reply = await send(client, bob, conv, "hushed", root=root["id"])
        assert root["mentions"] == []
        edited = await client.patch(
            f"{API}/messages/{root['id']}", json={"text": "hush"}, headers=alice.headers
        )
        assert edited.status_code == 200
        react = await client.put(f"{API}/messages/{root['id']}/reactions/ok", headers=bob.headers)
        assert react.status_code == 200
        before = await snapshot(client, alice, conv)

        for outsider in (eve, owner):
            await assert_hidden(client, outsider, conv, [root["id"], reply["id"]], bob)

        assert await snapshot(client, alice, conv) == before, kind
    for outsider in (eve, owner):
        listed = await client.get(f"{API}/conversations", headers=outsider.headers)
        assert listed.json()["conversations"] == []
        browse = await client.get(f"{API}/channels", headers=outsider.headers)
        assert browse.json()["channels"] == []


async def test_removed_members_lose_sight_at_once(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "channel", [bob.id], name="inner", visibility="private")
    msg = await send(client, alice, conv, "still here?")
    assert (await client.get(f"{API}/messages/{msg['id']}", headers=bob.headers)).status_code == 200
    removed = await client.delete(
        f"{API}/conversations/{conv}/members/{bob.id}", headers=alice.headers
    )
    assert removed.status_code == 204
    await assert_hidden(client, bob, conv, [msg["id"]], alice)


async def test_a_retried_send_does_not_reopen_a_conversation(
    world: World, client: httpx.AsyncClient
) -> None:
    """Retrying an old send after removal must not show what happened since (reactions,
    replies): the answer is the plain 404 of a conversation that does not exist."""
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    conv = await new_conv(client, alice, "group", [bob.id, carol.id])
    body = {"client_msg_id": "bobs-key", "text": "hello"}
    url = f"{API}/conversations/{conv}/messages"
    sent = await client.post(url, json=body, headers=bob.headers)
    assert sent.status_code == 201
    removed = await client.delete(
        f"{API}/conversations/{conv}/members/{bob.id}", headers=alice.headers
    )
    assert removed.status_code == 204
    await client.put(f"{API}/messages/{sent.json()['id']}/reactions/later", headers=carol.headers)

    retry = await client.post(url, json=body, headers=bob.headers)
    fresh = {"client_msg_id": "new-key", "text": "hello"}
    missing = await client.post(
        f"{API}/conversations/{new_id()}/messages", json=fresh, headers=bob.headers
    )
    assert code(retry) == (404, "not_found")
    assert retry.content == missing.content


# -- tenants ----------------------------------------------------------------------------------


async def rival_org(world: World) -> OrgId:
    """A second organization, inserted below the API (there is no API that makes orgs)."""
    org = Org(id=OrgId(new_id()), name="Rival Inc.", created_at=world.ctx.clock.now_ms())
    await world.ctx.db.write(lambda tx: account_store.insert_org(tx, org))
    return org.id


async def rival(world: World, org_id: OrgId, username: str) -> Person:
    """An owner of the rival organization: the strongest role there is."""
    ctx = world.ctx
    pw_hash = await ctx.cpu(ctx.passwords.hash, TEST_PASSWORD)
    user = User(
        id=UserId(new_id()),
        org_id=org_id,
        username=username,
        display_name=username,
        role=OrgRole.OWNER,
        is_active=True,
        must_change_password=False,
        created_at=ctx.clock.now_ms(),
    )

    def work(tx: Tx) -> None:
        account_store.insert_user(tx, user, pw_hash)

    await ctx.db.write(work)
    token = await world.login(username)
    return Person(user.id, username, token, {"Authorization": f"Bearer {token}"})


async def test_tenants_see_nothing_of_each_other(world: World, client: httpx.AsyncClient) -> None:
    owner = await world.owner()
    alice, bob = await people(world, "alice", "bob")
    public = await new_conv(client, alice, "channel", [bob.id], name="town-square")
    msg = await send(client, alice, public, "welcome, everyone in the org")
    org = await rival_org(world)
    mallory, trent = await rival(world, org, "mallory"), await rival(world, org, "trent")

    users = await client.get(f"{API}/users", headers=mallory.headers)
    assert [u["id"] for u in users.json()["users"]] == [mallory.id, trent.id]
    for target in (alice.id, owner.id):
        seen = await client.get(f"{API}/users/{target}", headers=mallory.headers)
        missing = await client.get(f"{API}/users/{new_id()}", headers=mallory.headers)
        assert code(seen) == (404, "not_found")
        assert seen.content == missing.content
    deactivate = await client.post(f"{API}/users/{alice.id}/deactivate", headers=mallory.headers)
    assert code(deactivate) == (404, "not_found")

    assert (await client.get(f"{API}/conversations", headers=mallory.headers)).json() == {
        "conversations": []
    }
    assert (await client.get(f"{API}/channels", headers=mallory.headers)).json() == {"channels": []}
    # Even the first org's *public* channel does not exist for her.
    await assert_hidden(client, mallory, public, [msg["id"]], alice)

    for kind, extra in (("dm", {}), ("group", {}), ("channel", {"name": "raid"})):
        resp = await client.post(
            f"{API}/conversations",
            json={"kind": kind, "members": [alice.id], **extra},
            headers=mallory.headers,
        )
        assert code(resp) == (404, "not_found"), kind
    own = await new_conv(client, mallory, "group", [trent.id], name="rivals")
    pull = await client.post(
        f"{API}/conversations/{own}/members", json={"user_ids": [alice.id]}, headers=mallory.headers
    )
    assert code(pull) == (404, "not_found")
    # Her @alice does not reach the first org, nor does alice's @mallory reach her.
    assert (await send(client, mallory, own, "hi @alice"))["mentions"] == []
    assert (await send(client, alice, public, "hi @mallory"))["mentions"] == []
    assert (await client.get(f"{API}/conversations", headers=alice.headers)).json()[
        "conversations"
    ][0]["id"] == public

    # And the other way round: the first org cannot see or add her.
    listed = await client.get(f"{API}/users", headers=owner.headers)
    assert {u["username"] for u in listed.json()["users"]} == {owner.username, "alice", "bob"}
    assert code(await client.get(f"{API}/users/{mallory.id}", headers=owner.headers)) == (
        404,
        "not_found",
    )
    add = await client.post(
        f"{API}/conversations/{public}/members",
        json={"user_ids": [mallory.id]},
        headers=alice.headers,
    )
    assert code(add) == (404, "not_found")
    await assert_hidden(client, alice, own, [], mallory)


# -- deactivated accounts ---------------------------------------------------------------------


async def test_deactivated_accounts_stop_working(world: World, client: httpx.AsyncClient) -> None:
    owner = await world.owner()
    alice, bob = await people(world, "alice", "bob")
    group = await new_conv(client, alice, "group", [bob.id])
    assert (await client.get(f"{API}/users/me", headers=bob.headers)).status_code == 200

    resp = await client.post(f"{API}/users/{bob.id}/deactivate", headers=owner.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["is_active"] is False

    for path in ("/users/me", "/conversations", f"/conversations/{group}"):
        assert code(await client.get(API + path, headers=bob.headers)) == (401, "unauthenticated")
    login = await client.post(
        f"{API}/auth/login", json={"username": "bob", "password": TEST_PASSWORD}
    )
    assert code(login) == (401, "invalid_credentials")

    carol = await world.person("carol")
    other = await new_conv(client, alice, "group", [carol.id])
    add = await client.post(
        f"{API}/conversations/{other}/members", json={"user_ids": [bob.id]}, headers=alice.headers
    )
    assert code(add) == (404, "not_found")
    for kind in ("dm", "group"):
        created = await client.post(
            f"{API}/conversations", json={"kind": kind, "members": [bob.id]}, headers=alice.headers
        )
        assert code(created) == (404, "not_found"), kind
    assert (await send(client, alice, group, "@bob are you there?"))["mentions"] == []

    back = await client.post(f"{API}/users/{bob.id}/activate", headers=owner.headers)
    assert back.status_code == 200
    # The old token stays dead; a new login works.
    assert code(await client.get(f"{API}/users/me", headers=bob.headers)) == (
        401,
        "unauthenticated",
    )
    fresh = {"Authorization": f"Bearer {await world.login('bob')}"}
    assert (await client.get(f"{API}/users/me", headers=fresh)).status_code == 200


# -- the property -----------------------------------------------------------------------------

NAMES = ("alice", "bob", "carol", "dave")
ROLES = ("owner", "moderator", "member")
Step = tuple[str, int, int, str]
STEPS = st.tuples(
    st.sampled_from(["add", "remove", "leave", "join", "set_role", "send"]),
    st.integers(0, len(NAMES) - 1),
    st.integers(0, len(NAMES) - 1),
    st.sampled_from(ROLES),
)


class Model:
    """The membership rules, written independently of the server, for private conversations."""

    def __init__(self, creator: int, others: set[int]) -> None:
        self.roles = {creator: "owner", **dict.fromkeys(others - {creator}, "member")}

    def owners(self) -> int:
        return sum(r == "owner" for r in self.roles.values())

    def apply(self, kind: str, actor: int, target: int, role: str) -> int:
        """Change the model; return the status the server must answer."""
        me = self.roles.get(actor)
        if me is None:
            return 404
        match kind:
            case "send":
                return 201
            case "join":
                return 200
            case "add":
                self.roles.setdefault(target, "member")
                return 200
            case "leave" | "remove" if kind == "leave" or target == actor:
                if me == "owner" and self.owners() <= 1 and len(self.roles) > 1:
                    return 409
                del self.roles[actor]
                return 204
            case "remove":
                if me == "member":
                    return 403
                theirs = self.roles.get(target)
                if theirs is None:
                    return 404
                if theirs == "owner" and me != "owner":
                    return 403
                del self.roles[target]
                return 204
            case _:  # set_role
                if me != "owner":
                    return 403
                theirs = self.roles.get(target)
                if theirs is None:
                    return 404
                if theirs != role and theirs == "owner" and self.owners() <= 1:
                    return 409
                self.roles[target] = role
                return 200


async def act(
    client: httpx.AsyncClient, conv: str, people: list[Person], step: Step
) -> httpx.Response:
    kind, actor, target = step[0], people[step[1]], people[step[2]]
    base = f"{API}/conversations/{conv}"
    h = actor.headers
    match kind:
        case "send":
            body = {"client_msg_id": secrets.token_hex(8), "text": "hi"}
            return await client.post(f"{base}/messages", json=body, headers=h)
        case "join":
            return await client.post(f"{base}/join", headers=h)
        case "add":
            return await client.post(f"{base}/members", json={"user_ids": [target.id]}, headers=h)
        case "leave":
            return await client.post(f"{base}/leave", headers=h)
        case "remove":
            return await client.delete(f"{base}/members/{target.id}", headers=h)
        case _:
            return await client.patch(
                f"{base}/members/{target.id}", json={"role": step[3]}, headers=h
            )


_CASTS: weakref.WeakKeyDictionary[World, list[Person]] = weakref.WeakKeyDictionary()


async def cast(world: World) -> list[Person]:
    """The same four people for every example of one test (accounts are slow to make)."""
    if world not in _CASTS:
        _CASTS[world] = await people(world, *NAMES)
    return _CASTS[world]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["group", "channel"]),
    creator=st.integers(0, len(NAMES) - 1),
    others=st.sets(st.integers(0, len(NAMES) - 1), min_size=1, max_size=3),
    steps=st.lists(STEPS, max_size=8),
)
async def test_non_members_of_private_conversations_always_get_404(
    world: World,
    client: httpx.AsyncClient,
    kind: str,
    creator: int,
    others: set[int],
    steps: list[Step],
) -> None:
    """Each example makes a fresh private conversation, changes its membership at random, and
    after every step checks who sees it; the server must also answer each step as the model
    of the rules predicts."""
    people = await cast(world)
    others = others - {creator} or {(creator + 1) % len(NAMES)}
    extra = {"name": f"c-{new_id()[:12]}", "visibility": "private"} if kind == "channel" else {}
    conv = await new_conv(client, people[creator], kind, [people[i].id for i in others], **extra)
    seed = await send(client, people[creator], conv, "seed")
    model = Model(creator, others)
    await check_sight(client, people, conv, seed["id"], model)
    for step in steps:
        expected = model.apply(*step)
        resp = await act(client, conv, people, step)
        assert resp.status_code == expected, (step, resp.text)
        await check_sight(client, people, conv, seed["id"], model)


async def check_sight(
    client: httpx.AsyncClient, people: list[Person], conv: str, msg: str, model: Model
) -> None:
    missing_conv = await client.get(f"{API}/conversations/{new_id()}", headers=people[0].headers)
    missing_msg = await client.get(f"{API}/messages/{new_id()}", headers=people[0].headers)
    assert code(missing_conv) == code(missing_msg) == (404, "not_found")
    for i, person in enumerate(people):
        got_conv = await client.get(f"{API}/conversations/{conv}", headers=person.headers)
        got_msg = await client.get(f"{API}/messages/{msg}", headers=person.headers)
        if i in model.roles:
            assert got_conv.status_code == 200, got_conv.text
            assert got_conv.json()["my_role"] == model.roles[i]
            assert got_msg.status_code == 200, got_msg.text
        else:
            assert got_conv.content == missing_conv.content, (NAMES[i], got_conv.text)
            assert got_msg.content == missing_msg.content, (NAMES[i], got_msg.text)
