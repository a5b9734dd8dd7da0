"""Shared by the owner page's browser tests: Chromium, a CJK font for screenshots, phones and WeChat."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "owner"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason=f"{CHROMIUM} is missing (apt-get install chromium)")
# WeChat's built-in browser on Android (X5/XWEB): what the page sees as navigator.userAgent.
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 12; V2055A Build/SP1A.210812.003; wv) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 XWEB/5061 "
             "MMWEBSDK/20230303 MMWEBID/1234 MicroMessenger/8.0.34.2340(0x2800225D) WeChat/arm64 Weixin "
             "NetType/WIFI Language/zh_CN ABI/arm64")
PHONES = {"phone": {"width": 390, "height": 844}, "small": {"width": 360, "height": 640}}


async def launch(pw):
    return await pw.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"])


async def phone_context(browser, size: str = "phone", *, wechat: bool = False, timezone: str = "America/New_York"):
    """A phone-sized context with a CJK font; its clock runs in another time zone than Beijing, so
    times on the page must be Beijing time by the page's own doing."""
    from server.printing.code_sheets import font_path

    context = await browser.new_context(viewport=PHONES[size], device_scale_factor=1, locale="zh-CN",
                                        timezone_id=timezone, is_mobile=True, has_touch=True,
                                        user_agent=WECHAT_UA if wechat else None)
    # Test-only: headless Chromium on a bare server image has no CJK font (phones have their own).
    await context.route("**/__test-font/cjk.otf", lambda route: route.fulfill(path=font_path()))
    await context.add_init_script("""document.addEventListener('DOMContentLoaded', function () {
        var s = document.createElement('style');
        s.textContent = "@font-face { font-family: 'Noto Sans CJK SC'; src: url('/__test-font/cjk.otf'); }";
        document.head.appendChild(s); });""")
    return context


async def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("document.fonts.ready")
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def beijing(moment: datetime, *, year: bool = True) -> str:
    """How the page writes a time: 2026年12月1日 09:00 (Beijing time)."""
    local = moment.astimezone(ZoneInfo("Asia/Shanghai"))
    return (f"{local.year}年" if year else "") + f"{local.month}月{local.day}日 {local:%H:%M}"


async def no_sideways_scroll(page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.fixture
async def browser():
    """Headless Chromium for a test (import this fixture into the test module)."""
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await launch(pw)
        yield browser
        await browser.close()
