"""Fixtures that run shadowpi itself (create_app) in front of the fake upstream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from proxy.app import create_app
from proxy.config import Config
from proxy.config_load import build_config
from tests.conftest import Upstream

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
)
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
HTML = {"Accept": "text/html"}


@dataclass
class FakeClock:
    """A clock tests move by hand, injected into the page cache (no sleeping to let a TTL pass)."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ProxyFactory:
    """Builds shadowpi apps on one data dir, pointed at the fake upstream."""

    client_factory: AiohttpClient
    data_dir: Path
    upstream: Upstream
    clock: FakeClock = field(default_factory=FakeClock)
    background: bool = True  # False: no periodic cache sweeps (tests call janitor.sweep() themselves)

    def config(self, **sections: dict[str, Any]) -> Config:
        raw: dict[str, dict[str, Any]] = {
            "server": {"data_dir": str(self.data_dir)},
            "upstream": {"url": self.upstream.url},
        }
        for section, values in sections.items():
            raw.setdefault(section, {}).update(values)
        return build_config(raw)

    async def __call__(self, **sections: dict[str, Any]) -> TestClient:
        app = create_app(self.config(**sections), clock=self.clock, background=self.background)
        return await self.client_factory(app)


@pytest.fixture
def make_proxy(aiohttp_client: AiohttpClient, tmp_path: Path, upstream: Upstream) -> ProxyFactory:
    """Factory for shadowpi test clients sharing one data dir (call again after close() to 'restart')."""
    return ProxyFactory(aiohttp_client, tmp_path / "data", upstream)


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, populated_upstream: Upstream) -> TestClient:
    """shadowpi with default settings in front of the populated fake upstream."""
    return await make_proxy()


ProxyMaker = Callable[..., Awaitable[TestClient]]
