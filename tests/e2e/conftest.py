"""Browser end-to-end fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Never run `playwright install`: the tests use the system Chromium at /usr/bin/chromium (scripts/test installs it)
and the UI built by scripts/build-frontend.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.llm.conftest import allow_loopback, llm_project  # noqa: F401  (the LLM panel's Marathi project)

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it are ordinary
# blocking calls, which Django's async-safety check would otherwise refuse.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("SENTIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "frontend" / "dist" / "sentio" / "app.js"
SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (scripts/test does this)")
    if not BUNDLE.exists():
        pytest.fail(f"The UI is not built ({BUNDLE} missing): run scripts/build-frontend")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class BrowserLog:
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    confirm_answers: list[bool] = field(default_factory=list)  # for the next confirm() dialogs; then dismissed

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line or "Content-Security-Policy" in line]


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def page(browser, browser_log, live_server):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, locale="en-GB")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("console", lambda message: browser_log.console.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: browser_log.errors.append(str(error)))

    def on_dialog(dialog) -> None:  # type: ignore[no-untyped-def]
        browser_log.dialogs.append(dialog.message)
        if browser_log.confirm_answers and browser_log.confirm_answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    tab.on("dialog", on_dialog)
    yield tab
    context.close()


def sign_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in with the keyboard only: the user name field has focus, Tab to the password, Enter to send."""
    page.goto("/accounts/login/")
    # autofocus lands a moment after load; typing before it would go nowhere
    page.wait_for_function("document.activeElement && document.activeElement.id === 'id_username'")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/projects/")


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """docs/screenshots/ when SENTIO_UPDATE_SCREENSHOTS=1 (for the README), else the test's own folder."""
    if os.environ.get("SENTIO_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS / name
    return tmp_path / name
