"""SDK fixtures: EnclaveClient instances talking to the real app in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest
from fastapi import FastAPI

from enclave.app import create_app
from enclave.services.context import Context
from enclave_client import EnclaveClient, UserId
from tests.conftest import World

BASE_URL = "http://testserver"


class Connect(Protocol):
    def __call__(
        self,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> EnclaveClient: ...


@dataclass
class Someone:
    """A person of the test organization and an SDK client logged in as them."""

    id: UserId
    username: str
    sdk: EnclaveClient


@pytest.fixture
def app(ctx: Context) -> FastAPI:
    return create_app(ctx)


@pytest.fixture
async def connect(app: FastAPI) -> AsyncIterator[Connect]:
    """Make SDK clients for the app; each is closed after the test."""
    opened: list[EnclaveClient] = []

    def make(
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> EnclaveClient:
        sdk = EnclaveClient(
            BASE_URL,
            token=token,
            transport=transport or httpx.ASGITransport(app=app),
            **options,
        )
        opened.append(sdk)
        return sdk

    yield make
    for sdk in opened:
        await sdk.aclose()


class People:
    """Creates people through the public API and hands out SDK clients logged in as them."""

    def __init__(self, world: World, connect: Connect) -> None:
        self.world = world
        self.connect = connect

    async def owner(self) -> Someone:
        owner = await self.world.owner()
        return Someone(UserId(owner.id), owner.username, self.connect(owner.token))

    async def add(self, username: str, role: str = "member") -> Someone:
        person = await self.world.person(username, role)
        return Someone(UserId(person.id), username, self.connect(person.token))


@pytest.fixture
def people(world: World, connect: Connect) -> People:
    return People(world, connect)
