"""A worklist's HTML page in a real headless browser (Debian's Chromium, driven by Playwright) at 1440 px with a CJK
font: no console error, no request but the page's own file, grouped by city → organization, the Chinese drawn in a
CJK font, nothing wider than the window. The screenshot is saved under ``tests/artifacts/`` and named at the end of
the test run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from regsync.i18n import use_language
from regsync.reports.worklist import open_worklist
from regsync.reports.worklist_render import write_worklist
from reports.conftest import ARTIFACTS, SAVED_ARTIFACTS
from reports.test_worklist import NOW, build


def test_worklist_html_in_chromium(engine: Engine, db_url: str, browser: Any, tmp_path: Path) -> None:
    build(engine)
    with engine.begin() as conn:  # data that tries to be markup
        conn.execute(text("UPDATE volunteer SET name = :n WHERE name = '王芳'"),
                     {"n": "王<img src=x onerror=alert(1)>芳"})
    with use_language("zh_CN"):
        [(page_file, n)] = write_worklist(open_worklist(engine, now=NOW), "html", tmp_path / "worklist.html")
    assert n == 7
    url = page_file.as_uri()
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    requests: list[str] = []
    console: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page = context.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "assert") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        page.goto(url, wait_until="load")
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        cities = page.eval_on_selector_all("section.city", "s => s.map(x => x.dataset.city)")
        assert cities == ["2301", "2302"]  # grouped by city, in order
        assert page.locator("section.city[data-city='2301'] h2").text_content() == "2301 哈尔滨市"
        orgs = page.eval_on_selector_all("section.city[data-city='2302'] h3", "hs => hs.map(h => h.textContent)")
        assert any("龙沙区志愿服务大队" in h and "赵强" in h and "136****1111" in h for h in orgs), orgs
        assert page.locator("tr[data-item]").count() == 7
        assert "手机号格式不正确" in page.text_content("section.city[data-city='2301']")
        assert page.locator("img").count() == 0  # the name stayed text
        assert "<img src=x" in page.text_content("main")
        # a CJK font draws the Chinese (the system's WenQuanYi), not a fallback box
        width = page.evaluate("""() => { const c = document.createElement('canvas').getContext('2d');
            c.font = '16px "WenQuanYi Micro Hei"'; return c.measureText('待办清单').width; }""")
        assert width > 40
        assert page.evaluate("document.fonts.check('16px \"WenQuanYi Micro Hei\"', '待办')")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1440
        ARTIFACTS.mkdir(exist_ok=True)
        engine_name = db_url.split(":", 1)[0].split("+", 1)[0].replace("mysql", "mariadb")
        shot = ARTIFACTS / f"worklist-{engine_name}-1440.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(page_file, ARTIFACTS / f"worklist-{engine_name}.html")
        SAVED_ARTIFACTS.append(shot)
        print(f"worklist screenshot: {shot}")
        assert shot.stat().st_size > 20_000
    finally:
        context.close()
    assert console == [], console
    assert requests == [url], requests
