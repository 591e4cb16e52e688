"""A real browser for the web interface's tests: Debian's chromium driven by Playwright, and axe-core.

Playwright cannot download its own browser here, so it drives /usr/bin/chromium (`.ci/run` installs it). Each test
gets a fresh profile (`--user-data-dir` in its tmp_path); the flags keep Chromium off the network, which on this
machine's closed network it would otherwise flood with background requests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, ConsoleMessage, Dialog, Page, async_playwright

from tests import leaks

CHROMIUM = Path(os.environ.get("SHADOWPI_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).parent / "screenshots"  # gitignored; CI keeps them as artifacts
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Browser:
    """One browser profile, with what its pages said: console messages and dialogs (alert, confirm)."""

    context: BrowserContext
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    async def page(self) -> Page:
        page = await self.context.new_page()
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()


def require_chromium() -> None:
    """Fail (not skip: a skipped browser test hides a missing check) when there is no browser to drive."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does), or -m 'not browser'")


async def open_browser(profile: Path, *, bypass_csp: bool = False) -> AsyncIterator[Browser]:
    """A fresh Chromium profile in `profile`; closed (and the browser stopped) when the generator finishes."""
    require_chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=FLAGS, headless=True, viewport=DESKTOP,
            bypass_csp=bypass_csp, env={**os.environ, **leaks.tag()}, timeout=60_000,
        )  # fmt: skip
        context.set_default_timeout(20_000)
        try:
            yield Browser(context)
        finally:
            await context.close()
    shutil.rmtree(profile, ignore_errors=True)


async def accessibility_violations(page: Page) -> list[str]:
    """axe-core's violations on the page (WCAG 2 A/AA and best practices), one line each."""
    results = await Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
    ]


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
