"""House rules that import-linter cannot express, checked by walking the source with `ast`.

1. **No import cycle** between any two modules of `src/`: every `import` counts, those under
   `if TYPE_CHECKING:` and those inside functions included (a cycle hidden behind either is
   still two modules that cannot be understood, tested or split apart one without the other).

2. **Access decisions only in `services/gates.py`.** An access decision starts where code holds
   an id it was given and loads the thing it names: a conversation, a membership (conversation
   and person), a message or a user. So, outside `services/gates.py` (and `storage/`, which
   defines them), no module may call the loaders by id listed in `LOOKUPS`, nor any function of
   `domain.policy` (its enums and constants may be used anywhere). The gates load and decide in
   one place, where "hidden" fails exactly like "missing". A call that needs no decision (the
   caller's own membership of a conversation a gate already let it into, read for display; the
   operator of the CLI, who has no actor) is listed in `EXCEPTIONS` with its reason; an entry
   that no longer matches a call fails too, so the list cannot rot.

Calls are recognised through the module's imports (`from enclave.storage import
conversations as store` then `store.by_id(...)`, `import enclave.storage.messages`, `from
enclave.domain.policy import authorize_org`, ...). A call through `getattr` or a variable
holding a function is not seen; review catches those.

Each check is also run over small planted sources, to show that it catches what it claims.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import enclave
from enclave.domain import policy

SRC = Path(enclave.__file__).resolve().parent.parent


@dataclass(frozen=True)
class Source:
    module: str
    text: str
    is_package: bool = False


def src_sources() -> list[Source]:
    """Every module under src/ (the server and the SDK)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found.append(Source(".".join(parts), path.read_text("utf-8"), is_package))
    return found


def _absolute(source: Source, node: ast.ImportFrom) -> str:
    """The module an `from ... import` names, with relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = source.module.split(".")
    if not source.is_package:
        package = package[:-1]
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _aliases(source: Source, tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it stands for, from every import of the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    first = alias.name.split(".")[0]
                    names[first] = first
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(source, node)
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
    return names


# -- 1. import cycles ---------------------------------------------------------------------------


def import_graph(sources: Iterable[Source]) -> dict[str, set[str]]:
    """module -> the modules of `sources` it imports (anywhere in its text)."""
    sources = list(sources)
    known = {s.module for s in sources}

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for source in sources:
        edges: set[str] = set()
        for node in ast.walk(ast.parse(source.text)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(source, node)
                # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
                ]
            for target in targets:
                resolved = resolve(target)
                if resolved is not None and resolved != source.module:
                    edges.add(resolved)
        graph[source.module] = edges
    return graph


def import_cycles(sources: Iterable[Source]) -> list[frozenset[str]]:
    """The groups of modules that import each other, directly or round a circle (the strongly
    connected components of the import graph with more than one module)."""
    graph = import_graph(sources)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iteratively (the graph is deep enough to matter for recursion).
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(frozenset(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_in_src() -> None:
    found = [sorted(c) for c in import_cycles(src_sources())]
    assert not found, f"import cycles (TYPE_CHECKING and local imports count): {found}"


def test_the_cycle_check_sees_type_checking_and_function_local_imports() -> None:
    planted = [
        Source("app", "", is_package=True),
        Source(
            "app.conn",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.hub import Hub\n",
        ),
        Source("app.hub", "def make():\n    from . import index\n"),
        Source("app.index", "import app.conn\n"),
        Source("app.alone", "from app import hub\n"),
    ]
    assert import_cycles(planted) == [frozenset({"app.conn", "app.hub", "app.index"})]
    # Break the circle where the real fix did (the connection no longer names the hub): none.
    planted[1] = Source("app.conn", "from typing import Protocol\n")
    assert import_cycles(planted) == []


def test_the_cycle_check_resolves_names_imported_from_a_module() -> None:
    planted = [
        Source("pkg", "", is_package=True),
        Source("pkg.a", "from pkg.b import thing\n"),
        Source("pkg.b", "from .a import other\nthing = 1\n"),
    ]
    assert import_cycles(planted) == [frozenset({"pkg.a", "pkg.b"})]


# -- 2. access decisions only in services/gates.py ----------------------------------------------

GATES = "enclave.services.gates"
LOOKUPS = frozenset(
    {
        "enclave.storage.conversations.by_id",
        "enclave.storage.conversations.with_member",
        "enclave.storage.conversations.member",
        "enclave.storage.messages.by_id",
        "enclave.storage.accounts.user_by_id",
    }
)
"""The storage functions that load a conversation, a membership, a message or a user by id."""
POLICY_FUNCTIONS = frozenset(
    f"enclave.domain.policy.{name}"
    for name, value in vars(policy).items()
    if inspect.isfunction(value) and value.__module__ == policy.__name__
)


@dataclass(frozen=True, order=True)
class Lookup:
    module: str
    function: str
    """The outermost function (or `Class.method`) the call is in; `<module>` at top level."""
    target: str


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _calls(source: Source, names: dict[str, str], node: ast.AST, where: str) -> Iterator[Lookup]:
    for child in ast.iter_child_nodes(node):
        here = where
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if where == "<module>":
                here = child.name
            elif isinstance(node, ast.ClassDef) and "." not in where:
                here = f"{where}.{child.name}"
        if isinstance(child, ast.Call):
            dotted = _dotted(child.func)
            if dotted is not None:
                head, _, rest = dotted.partition(".")
                full = names.get(head, head) + (f".{rest}" if rest else "")
                if full in LOOKUPS or full in POLICY_FUNCTIONS:
                    yield Lookup(source.module, here, full)
        yield from _calls(source, names, child, here)


def access_lookups(sources: Iterable[Source]) -> list[Lookup]:
    """Every call of a `LOOKUPS` loader or a `domain.policy` function outside the gates."""
    found: set[Lookup] = set()
    for source in sources:
        if source.module == GATES or source.module.startswith(
            ("enclave.storage.", "enclave.domain.policy")
        ):
            continue
        tree = ast.parse(source.text)
        found.update(_calls(source, _aliases(source, tree), tree, "<module>"))
    return sorted(found)


EXCEPTIONS: dict[Lookup, str] = {
    Lookup(
        "enclave.services.conversations", "_summary", "enclave.storage.conversations.member"
    ): "reads the actor's own membership (role, read marker) of a conversation a gate already "
    "let it into, to describe it; decides nothing",
    Lookup(
        "enclave.services.conversations", "browse_channels", "enclave.storage.conversations.member"
    ): "marks which listed public channels the actor joined; the listing itself passed "
    "gates.require_org(BROWSE_CHANNELS) and shows only the actor's organization's channels",
    Lookup(
        "enclave.services.conversations", "join", "enclave.storage.conversations.by_id"
    ): "re-reads, for its new last_seq, the conversation gates.conversation(JOIN) just let the "
    "actor join",
    Lookup(
        "enclave.services.accounts", "set_active", "enclave.storage.accounts.user_by_id"
    ): "the CLI operator's path (no actor): the operator may act on any account; an actor's "
    "path goes through gates.user_admin",
    Lookup(
        "enclave.services.exports.run", "operator_people", "enclave.storage.accounts.user_by_id"
    ): "the CLI operator (no actor) names people of the organization it exports",
}


def test_access_lookups_only_in_gates() -> None:
    new = [
        f"{f.module}.{f.function} calls {f.target}"
        for f in access_lookups(src_sources())
        if f not in EXCEPTIONS
    ]
    assert not new, (
        "load conversations, memberships, messages and users by id, and ask domain.policy, "
        f"only in services/gates.py (or list a justified exception): {new}"
    )


def test_every_access_exception_is_still_needed() -> None:
    found = set(access_lookups(src_sources()))
    stale = [e for e in EXCEPTIONS if e not in found]
    assert not stale, f"remove from EXCEPTIONS: {stale}"


def test_the_gate_check_catches_planted_lookups() -> None:
    body = """
from enclave.storage import conversations as store
import enclave.storage.messages
from enclave.storage.accounts import user_by_id
from enclave.domain import policy
from enclave.domain.policy import ConvAction, authorize_org

def a(tx, conv_id):
    return store.with_member(tx, conv_id, "u")

class Service:
    def b(self, tx, message_id):
        def inner():
            return enclave.storage.messages.by_id(tx, message_id)
        return inner()

async def c(tx, user_id, actor):
    if policy.authorize_conversation(actor, ConvAction.VIEW, None, None):
        return user_by_id(tx, user_id)
    return authorize_org(actor, ConvAction("view"))

def harmless(tx):
    return store.members(tx, "c"), store.by_dm_key(tx, "k")
"""
    found = access_lookups([Source("enclave.services.planted", body)])
    assert [(f.function, f.target.rpartition(".")[2]) for f in found] == [
        ("Service.b", "by_id"),
        ("a", "with_member"),
        ("c", "authorize_conversation"),
        ("c", "authorize_org"),
        ("c", "user_by_id"),
    ]
    # The same code in the gates, or in storage, is where it belongs.
    assert access_lookups([Source(GATES, body), Source("enclave.storage.x", body)]) == []


def test_the_gate_check_catches_a_lookup_planted_in_a_real_service() -> None:
    path = SRC / "enclave" / "services" / "messages.py"
    planted = path.read_text("utf-8") + (
        "\n\ndef peek(tx, message_id):\n    return store.by_id(tx, message_id)\n"
    )
    before = access_lookups([Source("enclave.services.messages", path.read_text("utf-8"))])
    after = access_lookups([Source("enclave.services.messages", planted)])
    assert set(after) - set(before) == {
        Lookup("enclave.services.messages", "peek", "enclave.storage.messages.by_id")
    }
