"""The permission table as a property (issue 6, acceptance 1).

Hypothesis builds random organizations through the REST API: org roles, a department tree,
where people belong and whom department admins administer, conversations of every kind with
members, moderators and read-only members, announcement channels, and a second organization
next to the first. After each build, every person asks for everything: their conversations,
the channel browser, the directory, each person, the departments, each conversation and its
first message, a post in each, and a department move of each person. The answers must be what
a model of the rules, written here independently of `enclave.domain.policy`, allows: anything
denied is 403, or 404 byte for byte like a missing id when the caller may not even see it.

The people are made once per test (accounts are slow to make) and kept across examples; the
model carries the state that accumulates (departments, conversations, memberships).
"""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.domain.ids import new_id
from tests.api.helpers import API, new_conv, people, send
from tests.api.test_visibility import rival, rival_org
from tests.conftest import TEST_PASSWORD, Person, World

N = 6  # people of the first organization besides its owner
ROLES = ["admin", "compliance_officer", "department_admin", "member", "guest"]
OWNER = "owner"


@dataclass
class Conv:
    org: str
    kind: str  # group | channel
    public: bool
    announcement: bool
    members: dict[str, str]  # person key -> owner | moderator | member | reader
    seed: str = ""


@dataclass
class Model:
    """What the server should hold, kept by the test as it builds."""

    org: dict[str, str] = field(default_factory=dict)  # person key -> "A" | "B"
    role: dict[str, str] = field(default_factory=dict)
    depts: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (org, parent)
    dept_of: dict[str, str | None] = field(default_factory=dict)
    admin_of: dict[str, set[str]] = field(default_factory=dict)
    convs: dict[str, Conv] = field(default_factory=dict)

    # -- the rules, as the issue states them ---------------------------------------------------

    def subtree(self, key: str) -> set[str]:
        if self.role[key] != "department_admin":
            return set()
        found = set(self.admin_of.get(key, set()))
        grew = True
        while grew:
            grew = False
            for dept, (_org, parent) in self.depts.items():
                if parent in found and dept not in found:
                    found.add(dept)
                    grew = True
        return found

    def shares(self, a: str, b: str) -> bool:
        return any(a in c.members and b in c.members for c in self.convs.values())

    def sees_person(self, actor: str, target: str) -> bool:
        if self.org[actor] != self.org[target]:
            return False
        if self.role[actor] == "guest":
            return actor == target or self.shares(actor, target)
        return True

    def sees_conv(self, actor: str, conv: Conv) -> bool:
        if self.org[actor] != conv.org:
            return False
        if actor in conv.members:
            return True
        return conv.kind == "channel" and conv.public and self.role[actor] != "guest"

    def post_status(self, actor: str, conv: Conv) -> int:
        if not self.sees_conv(actor, conv):
            return 404
        mine = conv.members.get(actor)
        if mine is None or mine == "reader":
            return 403
        if conv.announcement and mine not in ("owner", "moderator"):
            return 403
        return 201

    def move_status(self, actor: str, target: str) -> int:
        """Moving `target` to the department they are in already (a no-op when allowed)."""
        role = self.role[actor]
        if role not in ("owner", "admin", "department_admin"):
            return 403
        if self.org[actor] != self.org[target]:
            return 404
        theirs = self.role[target]
        if role == "owner":
            return 200
        if role == "admin":
            return 403 if theirs == "owner" else 200
        inside = self.dept_of.get(target) in self.subtree(actor)
        return 200 if inside and theirs in ("member", "guest") else 403


@dataclass
class Cast:
    people: dict[str, Person]
    model: Model


_CASTS: weakref.WeakKeyDictionary[World, Cast] = weakref.WeakKeyDictionary()


async def cast(world: World, client: httpx.AsyncClient) -> Cast:
    """The owner and N people of organization A; an owner and a member of organization B with
    a public channel of their own."""
    if world in _CASTS:
        return _CASTS[world]
    owner = await world.owner()
    names = [f"person{i}" for i in range(N)]
    found = dict(zip(names, await people(world, *names), strict=True))
    org = await rival_org(world)
    mallory = await rival(world, org, "mallory")
    made = await client.post(
        f"{API}/users",
        json={"username": "trent", "password": TEST_PASSWORD},
        headers=mallory.headers,
    )
    assert made.status_code == 201, made.text
    token = await world.login("trent")
    trent = Person(made.json()["id"], "trent", token, {"Authorization": f"Bearer {token}"})
    model = Model()
    everyone = {OWNER: owner, **found, "mallory": mallory, "trent": trent}
    for key in everyone:
        model.org[key] = "B" if key in ("mallory", "trent") else "A"
        model.role[key] = "owner" if key in (OWNER, "mallory") else "member"
        model.dept_of[key] = None
    square = await new_conv(client, mallory, "channel", [trent.id], name="rival-square")
    seed = await send(client, mallory, square, "rival news")
    model.convs[square] = Conv(
        "B", "channel", True, False, {"mallory": "owner", "trent": "member"}, seed["id"]
    )
    built = Cast(everyone, model)
    _CASTS[world] = built
    return built


# -- building an example ------------------------------------------------------------------------

KINDS = ["group", "public", "private", "announcement"]
# One to three conversations: (kind, index of the creator, {index of a member: their role}).
CONVERSATIONS = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, N),
        st.dictionaries(
            st.integers(0, N - 1),
            st.sampled_from(["member", "moderator", "reader"]),
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=3,
)
ConvSpec = tuple[str, int, dict[int, str]]


async def build(
    client: httpx.AsyncClient,
    c: Cast,
    roles: list[str],
    tree: list[int],
    places: list[int],
    admin_of: list[int],
    convs: list[ConvSpec],
) -> list[str]:
    """Apply one example through the API (as the owner and the conversations' creators);
    return the ids of the conversations made."""
    m, owner = c.model, c.people[OWNER]
    keys = [f"person{i}" for i in range(N)]
    for key, role in zip(keys, roles, strict=True):
        resp = await client.put(
            f"{API}/users/{c.people[key].id}/role", json={"role": role}, headers=owner.headers
        )
        assert resp.status_code == 200, resp.text
        if m.role[key] == "department_admin" and role != "department_admin":
            m.admin_of[key] = set()
        m.role[key] = role

    made: list[str] = []
    for i, parent in enumerate(tree):
        parent_id = made[parent] if 0 <= parent < i else None
        resp = await client.post(
            f"{API}/departments",
            json={"name": f"d-{secrets.token_hex(4)}", "parent_id": parent_id},
            headers=owner.headers,
        )
        assert resp.status_code == 201, resp.text
        made.append(resp.json()["id"])
        m.depts[made[-1]] = ("A", parent_id)

    for key, place in zip(keys, places, strict=True):
        target = made[place % len(made)] if place >= 0 else None
        resp = await client.put(
            f"{API}/users/{c.people[key].id}/department",
            json={"department_id": target},
            headers=owner.headers,
        )
        assert resp.status_code == 200, resp.text
        m.dept_of[key] = target

    for key, place in zip(keys, admin_of, strict=True):
        if m.role[key] != "department_admin" or place < 0:
            continue
        dept = made[place % len(made)]
        resp = await client.put(
            f"{API}/departments/{dept}/admins/{c.people[key].id}", headers=owner.headers
        )
        assert resp.status_code == 200, resp.text
        m.admin_of.setdefault(key, set()).add(dept)

    ids = []
    for kind, creator_index, members in convs:
        creator = keys[creator_index] if creator_index < N else OWNER
        if m.role[creator] == "guest":
            creator = OWNER  # guests create nothing; that is checked below
        others = {keys[i]: r for i, r in members.items() if keys[i] != creator}
        if kind == "group" and not others:
            others = {next(k for k in keys if k != creator): "member"}
        extra: dict[str, Any] = {}
        if kind != "group":
            extra = {
                "name": f"c-{new_id()[:12]}",
                "visibility": "private" if kind == "private" else "public",
                "announcement": kind == "announcement",
            }
        who = c.people[creator]
        member_ids = [c.people[k].id for k in others]
        conv = await new_conv(
            client, who, "group" if kind == "group" else "channel", member_ids, **extra
        )
        for key, role in others.items():
            if role != "member":
                resp = await client.patch(
                    f"{API}/conversations/{conv}/members/{c.people[key].id}",
                    json={"role": role},
                    headers=who.headers,
                )
                assert resp.status_code == 200, resp.text
        seed = await send(client, who, conv, "seed")
        m.convs[conv] = Conv(
            org="A",
            kind="group" if kind == "group" else "channel",
            public=kind in ("public", "announcement"),
            announcement=kind == "announcement",
            members={creator: "owner", **others},
            seed=seed["id"],
        )
        ids.append(conv)
    return ids


# -- checking -----------------------------------------------------------------------------------


async def check(client: httpx.AsyncClient, c: Cast, fresh: list[str]) -> None:
    m = c.model
    probe_convs = [*fresh, next(k for k, v in m.convs.items() if v.org == "B")]
    for key, who in c.people.items():
        h = who.headers
        missing_conv = await client.get(f"{API}/conversations/{new_id()}", headers=h)
        missing_msg = await client.get(f"{API}/messages/{new_id()}", headers=h)
        missing_user = await client.get(f"{API}/users/{new_id()}", headers=h)

        # My conversations: exactly those I am a member of.
        mine = (await client.get(f"{API}/conversations", headers=h)).json()["conversations"]
        assert {x["id"] for x in mine} == {
            cid for cid, conv in m.convs.items() if key in conv.members
        }, key

        # The channel browser: all public channels of my organization; guests may not browse.
        browse = await client.get(f"{API}/channels?limit=1000", headers=h)
        if m.role[key] == "guest":
            assert browse.status_code == 403, (key, browse.text)
        else:
            assert {x["id"] for x in browse.json()["channels"]} == {
                cid
                for cid, conv in m.convs.items()
                if conv.org == m.org[key] and conv.kind == "channel" and conv.public
            }, key

        # The directory and each person.
        listed = (await client.get(f"{API}/users?limit=1000", headers=h)).json()["users"]
        assert {u["id"] for u in listed} == {
            c.people[t].id for t in c.people if m.sees_person(key, t)
        }, key
        for target, person in c.people.items():
            got = await client.get(f"{API}/users/{person.id}", headers=h)
            if m.sees_person(key, target):
                assert got.status_code == 200, (key, target, got.text)
                assert got.json()["department_id"] == m.dept_of[target]
            else:
                assert got.content == missing_user.content, (key, target, got.text)

        # Departments: my organization's, unless I am a guest.
        depts = await client.get(f"{API}/departments", headers=h)
        if m.role[key] == "guest":
            assert depts.status_code == 403, key
        else:
            assert {d["id"] for d in depts.json()["departments"]} == {
                d for d, (org, _p) in m.depts.items() if org == m.org[key]
            }, key

        # Conversations and their messages: seen, or not there at all; and posting.
        for cid in probe_convs:
            conv = m.convs[cid]
            got_conv = await client.get(f"{API}/conversations/{cid}", headers=h)
            got_msg = await client.get(f"{API}/messages/{conv.seed}", headers=h)
            if m.sees_conv(key, conv):
                assert got_conv.status_code == 200, (key, cid, got_conv.text)
                assert got_conv.json()["my_role"] == conv.members.get(key)
                assert got_msg.status_code == 200, (key, cid, got_msg.text)
            else:
                assert got_conv.content == missing_conv.content, (key, cid, got_conv.text)
                assert got_msg.content == missing_msg.content, (key, cid, got_msg.text)
            posted = await client.post(
                f"{API}/conversations/{cid}/messages",
                json={"client_msg_id": secrets.token_hex(8), "text": "probe"},
                headers=h,
            )
            assert posted.status_code == m.post_status(key, conv), (key, cid, posted.text)
            if posted.status_code == 404:
                missing_post = await client.post(
                    f"{API}/conversations/{new_id()}/messages",
                    json={"client_msg_id": secrets.token_hex(8), "text": "probe"},
                    headers=h,
                )
                assert posted.content == missing_post.content

        # Guests create nothing.
        if m.role[key] == "guest":
            made = await client.post(
                f"{API}/conversations", json={"kind": "channel", "name": "nope"}, headers=h
            )
            assert made.status_code == 403, made.text

        # Administration: moving each person where they are is allowed only in scope.
        for target, person in c.people.items():
            moved = await client.put(
                f"{API}/users/{person.id}/department",
                json={"department_id": m.dept_of[target]},
                headers=h,
            )
            assert moved.status_code == m.move_status(key, target), (key, target, moved.text)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    roles=st.lists(st.sampled_from(ROLES), min_size=N, max_size=N),
    tree=st.lists(st.integers(-1, 3), min_size=1, max_size=4),
    places=st.lists(st.integers(-1, 3), min_size=N, max_size=N),
    admin_of=st.lists(st.integers(-1, 3), min_size=N, max_size=N),
    convs=CONVERSATIONS,
)
async def test_nobody_sees_or_does_what_the_table_denies(
    world: World,
    client: httpx.AsyncClient,
    roles: list[str],
    tree: list[int],
    places: list[int],
    admin_of: list[int],
    convs: list[ConvSpec],
) -> None:
    c = await cast(world, client)
    fresh = await build(client, c, roles, tree, places, admin_of, convs)
    await check(client, c, fresh)
