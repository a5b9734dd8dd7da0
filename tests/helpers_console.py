"""Driving the organisers' console (/admin/) in headless Chromium: a browser, a page with a CJK font,
sign-in, waiting for a screen, and screenshots at phone and desktop sizes under test-artifacts/console/."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers_live import chromium_path, wait_for_js

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = chromium_path()
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="/usr/bin/chromium is missing "
                                    "(apt-get update && apt-get install -y chromium)")


@pytest.fixture
async def browser():
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser, size: str = "desktop"):
    """A fresh context (its own sessionStorage) with a CJK font for the screenshots; page errors are
    collected in ``page.errors``."""
    from server.printing.code_sheets import font_path

    context = await browser.new_context(viewport=SIZES[size], device_scale_factor=1, locale="zh-CN",
                                        accept_downloads=True)
    # Test-only: a bare server image may have no CJK font; phones and desktops have their own.
    await context.route("**/__test-font/cjk.otf", lambda route: route.fulfill(path=font_path()))
    await context.add_init_script("""document.addEventListener('DOMContentLoaded', function () {
        var s = document.createElement('style');
        s.textContent = "@font-face { font-family: 'Noto Sans CJK SC'; src: url('/__test-font/cjk.otf'); }";
        document.head.appendChild(s); });""")
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


async def ready(page, screen: str | None = None, timeout: float = 15_000) -> None:
    """Wait until the console has drawn a screen (``data-screen`` = ``screen`` when given)."""
    check = "document.getElementById('app').dataset.ready === '1'"
    if screen:
        check += f" && !!document.querySelector('[data-screen=\"{screen}\"]')"
    await wait_for_js(page, check, timeout=timeout)


async def open_console(page, client, path: str = "") -> None:
    await page.goto(str(client.make_url("/admin/")) + (f"#{path}" if path else ""))
    await ready(page)


async def sign_in(page, client, username: str, password: str) -> None:
    await open_console(page, client)
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("#login-submit")
    await ready(page, "communities")


async def go(page, path: str, screen: str | None = None) -> None:
    """Follow a console address (#/…) and wait for its screen."""
    await page.evaluate(f"location.hash = {path!r}")
    await ready(page, screen)


async def reloads(page, selector: str, screen: str | None = None, *, reason: str | None = None,
                  confirmed: bool = False) -> None:
    """Click ``selector`` (and answer the confirmation when ``confirmed``) and wait until the console
    has redrawn the screen after the action."""
    await page.evaluate("document.getElementById('app').dataset.ready = 'stale'")
    await page.click(selector)
    if confirmed:
        await confirm(page, reason)
    await ready(page, screen)


async def text(page, selector: str) -> str:
    return await page.inner_text(selector)


async def wait_text(page, selector: str, needle: str, timeout: float = 15_000) -> str:
    """Wait until the element's text contains ``needle``; returns the text."""
    await wait_for_js(page, f"!!document.querySelector({selector!r}) && "
                            f"document.querySelector({selector!r}).innerText.includes({needle!r})", timeout=timeout)
    return await page.inner_text(selector)


async def wait_message(page, selector: str, timeout: float = 15_000) -> str:
    """Wait until the element shows some text (a message from the server); returns it."""
    await wait_for_js(page, f"!!document.querySelector({selector!r}) && "
                            f"document.querySelector({selector!r}).innerText.trim().length > 0", timeout=timeout)
    return await page.inner_text(selector)


async def confirm(page, reason: str | None = None) -> None:
    """Answer the console's confirmation dialog (with a reason when it asks for one)."""
    await page.wait_for_selector("#confirm[open]")
    if reason is not None:
        await page.fill("#confirm-input", reason)
    await page.click("#confirm-ok")


async def shoot(page, name: str) -> None:
    """Screenshots of the current screen at phone and desktop sizes: test-artifacts/console/NAME-SIZE.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for size, viewport in SIZES.items():
        await page.set_viewport_size(viewport)
        await page.wait_for_timeout(150)
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
    await page.set_viewport_size(original)


def no_page_errors(page) -> None:
    assert page.errors == [], page.errors


__all__ = ["ARTIFACTS", "browser", "confirm", "go", "needs_chromium", "new_page", "no_page_errors", "open_console",
           "ready", "reloads", "shoot", "sign_in", "text", "wait_message", "wait_text"]
