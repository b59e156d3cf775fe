"""Browser tests: Playwright (async API) driving Debian's Chromium against real `enclave serve`.

One Chromium runs for the whole session (`browser`); every test gets a fresh SQLite server with an
organisation created through the REST API (`org`), and opens browser contexts through `web`, which
logs people in through the UI, records every URL each page requests and, when the test fails,
saves a screenshot of every page it opened to test-artifacts/web/failures/.

Elements are found only through the `data-testid` attributes of docs/web-client-contract.md.
Browsers are never downloaded: a missing /usr/bin/chromium skips these tests locally and fails
them in CI (CI=true).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    Request,
    ViewportSize,
    WebSocket,
    async_playwright,
    expect,
)

from tests.e2e.conftest import Servers
from tests.e2e.harness import START_TIMEOUT, ServerProcess
from tests.e2e.test_acceptance import (
    PASSWORD,
    Conversation,
    Person,
    create_conversation,
    create_person,
    take_over_owner,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "web"
APP_PATH = "/"  # where `enclave serve` serves the web client
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000  # any single wait: an element appearing, a message arriving
RECONNECT_TIMEOUT_MS = 20_000  # reconnecting with backoff after the network or server returns

expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Org:
    """A server with an owner, three people, a DM (alice, bob) and a group (all three)."""

    servers: Servers
    server: ServerProcess
    owner: Person
    alice: Person
    bob: Person
    carol: Person
    dm: Conversation
    group: Conversation

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def display_name(self, person: Person) -> str:
        return person.username.title()  # as create_person sets it


@dataclass
class Session:
    """One browser context with one page, as one person on one device."""

    name: str
    context: BrowserContext
    page: Page
    person: Person | None = None
    requests: list[str] = field(default_factory=list)  # every URL the page requested, in order
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def submit_button(form_testid: str, page: Page) -> Locator:
    """The submit button of a form found by its testid (the contract names no testid for it)."""
    return page.get_by_test_id(form_testid).locator(
        "button[type=submit], input[type=submit], button:not([type])"
    )


async def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form and wait for the app to be connected."""
    form = page.get_by_test_id("login-form")
    await form.locator("input[name=username]").fill(username)
    await form.locator("input[name=password]").fill(password)
    await submit_button("login-form", page).click()
    await expect(page.get_by_test_id("app")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute(
        "data-state", "online", timeout=RECONNECT_TIMEOUT_MS
    )


class Web:
    """Opens browser contexts for one test and closes them at its end."""

    def __init__(self, browser: Browser, base_url: str, test_name: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.test_name = test_name
        self.sessions: list[Session] = []

    async def open(
        self,
        person: Person | None = None,
        *,
        phone: bool = False,
        locale: str = "en-US",
        name: str = "",
    ) -> Session:
        """A new context at the server's `/`, logged in as `person` through the UI (if given)."""
        context = await self.browser.new_context(
            viewport=PHONE if phone else DESKTOP,
            locale=locale,
            base_url=self.base_url,
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        session = Session(
            name=name or f"{person.username if person else 'anonymous'}-{len(self.sessions)}",
            context=context,
            page=page,
        )
        self.sessions.append(session)

        def on_request(request: Request) -> None:
            session.requests.append(request.url)

        def on_websocket(ws: WebSocket) -> None:
            session.requests.append(ws.url)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                session.console_errors.append(message.text)

        def on_page_error(error: Exception) -> None:
            session.page_errors.append(str(error))

        async def on_dialog(dialog: Dialog) -> None:
            await dialog.accept()  # e.g. "Recall this message?": the user agrees

        page.on("request", on_request)
        page.on("websocket", on_websocket)
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("dialog", on_dialog)

        await page.goto(APP_PATH)
        await expect(page.get_by_test_id("login-form")).to_be_visible()
        if person is not None:
            await log_in(page, person.username)
            session.person = person
        return session

    async def close(self, failed: bool) -> None:
        for session in self.sessions:
            if failed:
                shots = ARTIFACTS / "failures"
                shots.mkdir(parents=True, exist_ok=True)
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.test_name}-{session.name}")
                try:
                    await session.page.screenshot(path=shots / f"{safe}.png", full_page=True)
                except Exception as exc:  # a failure screenshot must not hide the real failure
                    print(f"no failure screenshot for {session.name}: {exc!r}")
                if session.page_errors or session.console_errors:
                    print(
                        f"--- {session.name}: page errors {session.page_errors}"
                        f" console errors {session.console_errors}"
                    )
            await session.context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so `web` knows at teardown if the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def artifacts_dir() -> Path:
    """test-artifacts/web/ (git-ignored), without the failure screenshots of an earlier run."""
    shutil.rmtree(ARTIFACTS / "failures", ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium: skipped locally when missing, a failure in CI."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is required in CI for the browser tests but is missing")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser tests)")
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session."""
    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield found
        finally:
            await found.close()


async def build_org(servers: Servers) -> Org:
    """The owner takes over, then creates alice, bob and carol, a DM and a group via REST."""
    server = servers.started[0]
    assert server.one_time_password is not None
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
        owner = await take_over_owner(client, server.one_time_password)
        alice, bob, carol = [
            await create_person(client, owner, n) for n in ("alice", "bob", "carol")
        ]
        dm = await create_conversation(client, alice, "dm", [bob])
        group = await create_conversation(client, alice, "group", [bob, carol], "launch crew")
    return Org(servers, server, owner, alice, bob, carol, dm, group)


class OrgPool:
    """Every test gets a fresh server and organisation of its own; the next test's is started in
    a background thread while the current test runs, which hides a server's start-up time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="web-org")
        self.next: Future[Org] | None = None

    def _build(self) -> Org:
        self.count += 1
        servers = Servers(self.root / f"org{self.count}")
        try:
            servers.start()
            return asyncio.run(build_org(servers))
        except BaseException:
            servers.stop_all()
            raise

    def take(self) -> Org:
        ready = self.next or self.worker.submit(self._build)
        self.next = self.worker.submit(self._build)
        return ready.result(timeout=START_TIMEOUT * 2)

    def close(self) -> None:
        if self.next is not None:
            try:
                self.next.result(timeout=START_TIMEOUT * 2).servers.stop_all()
            except BaseException as exc:  # an unused spare: report, do not fail the session
                print(f"the spare web test server did not start or stop cleanly: {exc!r}")
        self.worker.shutdown(wait=True)


@pytest.fixture(scope="session")
def org_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrgPool]:
    pool = OrgPool(tmp_path_factory.mktemp("web"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def org(org_pool: OrgPool) -> Iterator[Org]:
    """A fresh SQLite server (a real `enclave serve` process) with its organisation; stopped at
    the end of the test and required to exit cleanly."""
    found = org_pool.take()
    try:
        yield found
    finally:
        found.servers.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def web(browser: Browser, org: Org, request: pytest.FixtureRequest) -> AsyncIterator[Web]:
    found = Web(browser, org.base_url, request.node.name)
    try:
        yield found
    finally:
        report = getattr(request.node, "report_call", None)
        await found.close(failed=report is None or report.failed)
