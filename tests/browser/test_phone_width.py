"""Every page at phone width (375 px), in one browser session: the public site, and every page
an agency owner can reach, collected from the URL configuration (a new page is walked as soon
as it exists) with its parameters filled by seeded objects. Nothing may be wider than the
screen, every control is in the page's type, and the main navigation folds into a menu that
opens, with the mouse and the keyboard, without JavaScript too."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apps.audit.models import AuditLog
from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, Stack, sign_in
from tests.test_access_control import _objects, agency_urls

OWNER = "owner@committed.example"
LONG_EMAIL = "alexandra.fitzgerald-smith@creative-agency.example"
IPV6 = "2001:db8:85a3:1234:5678:8a2e:370:7334"
# Pages other than the ones the URL configuration names on its own: the other calendar view.
EXTRA_PATHS = ("/calendar/?view=week",)
# Django's own admin has its own stylesheet and is no page of ours; the API answers JSON.
NOT_OUR_PAGES = ("admin:", "api-")
SCREENSHOT_PAGES = {"home", "posts:compose", "team:member", "audit:list", "analytics:overview", "landing"}

# What sticks out: elements whose right edge passes the screen's, leaving out those inside a
# box that scrolls or clips and itself fits (a wide table in its own scroller is fine), reporting the
# innermost (the button, not every box around it).
OVERFLOW = """() => {
    const width = window.innerWidth;
    const clipped = el => {
        for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
            const fits = up.getBoundingClientRect().right <= width + 0.5;
            if (getComputedStyle(up).overflowX !== 'visible' && fits) return true;
        }
        return false;
    };
    const wide = [...document.body.querySelectorAll('*')].filter(el => {
        const box = el.getBoundingClientRect();
        return box.width > 0 && box.height > 0 && box.right > width + 0.5 && !clipped(el);
    });
    const innermost = wide.filter(el => !wide.some(other => other !== el && el.contains(other)));
    // Controls in a type of their own (a browser's 13 px Arial, not the page's).
    const family = getComputedStyle(document.body).fontFamily;
    const fonts = [...document.querySelectorAll('button, input, select, textarea')]
        .filter(el => el.offsetParent !== null && getComputedStyle(el).fontFamily !== family)
        .map(el => `<${el.tagName.toLowerCase()} name=${el.name}> in ${getComputedStyle(el).fontFamily}`);
    return {
        fonts: fonts.slice(0, 6),
        scrollWidth: document.documentElement.scrollWidth,
        width,
        offenders: innermost.slice(0, 6).map(el => {
            const box = el.getBoundingClientRect();
            const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/) : [];
            const name = el.tagName.toLowerCase() + classes.filter(Boolean).map(c => '.' + c).join('');
            const text = (el.textContent || '').trim().slice(0, 40);
            return `<${name}> ${Math.round(box.width)}px wide, ends at ${Math.round(box.right)}px: ${text}`;
        }),
    };
}"""


def _overflow(page: Any, label: str) -> list[str]:
    found = page.evaluate(OVERFLOW)
    problems = [f"{label}: a control {font}" for font in found["fonts"]]
    if found["scrollWidth"] <= found["width"] and not found["offenders"]:
        return problems
    page_width = f"{label}: page {found['scrollWidth']}px wide on a {found['width']}px screen"
    return [*problems, page_width, *found["offenders"]]


def _html_page(page: Any, url: str) -> bool:
    """Whether GET `url` answers a whole page of ours (not a fragment, file, redirect or error),
    asked from the page (the browser resolves the agency's host; the same cookies)."""
    return bool(
        page.evaluate(
            """async url => {
                const response = await fetch(url, {redirect: 'manual', headers: {Accept: 'text/html'}});
                const html = (response.headers.get('content-type') || '').includes('text/html');
                return response.status === 200 && html && (await response.text()).includes('<main');
            }""",
            url,
        )
    )


def test_every_page_fits_a_phone_and_the_menu_opens(
    stack: Stack, make_agency: Any, browser: Any, django_db_blocker: Any
) -> None:
    # Given an agency with one of everything a URL can name
    agency = make_agency()
    with django_db_blocker.unblock():
        objects = _objects(agency, owner_email=OWNER)
        with schema_context(agency.schema_name):
            # An entry with long changes, from a long address over IPv6 (the audit log below).
            AuditLog.objects.create(
                action="settings.changed",
                actor_email=LONG_EMAIL,
                ip=IPV6,
                changes={"name": ["Committed Agency", "Committed " * 30], "notes": "word " * 80},
            )
        connection.set_schema_to_public()
        urls = [(name, path) for name, path, _ in agency_urls(objects) if not name.startswith(NOT_OUR_PAGES)]
    urls += [(f"extra {path}", path) for path in EXTRA_PATHS]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    try:
        # The public site and the agency's sign-in page, signed out
        for name, url in (
            ("landing", stack.url(None, "/")),
            ("signup", stack.url(None, "/signup/")),
            ("find_agency", stack.url(None, "/find/")),
            ("login", stack.url(agency, "/login/")),
            ("password_reset", stack.url(agency, "/password-reset/")),
        ):
            response = page.goto(url)
            if response is None or response.status != 200:
                continue  # (a path this site does not have: the walk below finds its pages)
            problems += _overflow(page, name)
            if name in SCREENSHOT_PAGES:
                page.screenshot(path=SCREENSHOTS / f"phone-{name}.png", full_page=True)

        # The navigation is a closed menu on the phone, which opens and closes from the keyboard
        sign_in(page, stack, agency, email=OWNER)
        nav = page.get_by_role("navigation", name="Main")
        menu = page.locator("summary", has_text="Menu")
        expect(menu).to_be_visible()
        expect(nav.get_by_role("link", name="Calendar")).to_be_hidden()
        top = page.evaluate("document.querySelector('.topbar').getBoundingClientRect().height")
        assert top < 90, f"the closed menu's top bar is {top}px high: it should be one row"
        menu.focus()
        page.keyboard.press("Enter")
        expect(nav.get_by_role("link", name="Calendar")).to_be_visible()
        expect(nav.get_by_role("link", name="Audit log")).to_be_visible()
        problems += _overflow(page, "the open menu")
        page.screenshot(path=SCREENSHOTS / "phone-menu-open.png", full_page=True)
        page.keyboard.press("Enter")
        expect(nav.get_by_role("link", name="Calendar")).to_be_hidden()
        menu.click()
        nav.get_by_role("link", name="Calendar").click()
        page.wait_for_url(stack.url(agency, "/calendar/"))

        # Every page the owner can open
        walked = []
        for name, path in urls:
            url = stack.url(agency, path)
            if not _html_page(page, url):
                continue
            page.goto(url)
            walked.append(name)
            problems += _overflow(page, f"{name} ({path})")
            if name in SCREENSHOT_PAGES:
                page.screenshot(path=SCREENSHOTS / f"phone-{name.replace(':', '-')}.png", full_page=True)

        # At desktop width, the audit log's changes need no sideways scrolling, and the address
        # and IP stand whole on one line
        page.set_viewport_size(DESKTOP)
        page.goto(stack.url(agency, "/audit/"))
        page.screenshot(path=SCREENSHOTS / "desktop-audit-list.png", full_page=True)
        cookies = context.cookies()
        scroller = page.locator(".table-scroll")
        assert scroller.evaluate("el => el.scrollWidth <= el.clientWidth"), "the audit table scrolls sideways"
        for whole in (LONG_EMAIL, IPV6):
            lines = page.locator(".address", has_text=whole).first.evaluate(
                "el => { const r = document.createRange(); r.selectNodeContents(el);"
                " return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }"
            )
            assert lines == 1, f"{whole} is broken over {lines} lines"
    finally:
        context.close()

    # Without JavaScript, the menu opens all the same (the same session, in a second tab)
    plain = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        plain.add_cookies(cookies)
        page = plain.new_page()
        page.goto(stack.url(agency, "/"))
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Team")).to_be_hidden()
        page.locator("summary", has_text="Menu").click()
        expect(nav.get_by_role("link", name="Team")).to_be_visible()
    finally:
        plain.close()

    assert not problems, "\n".join(problems)
    # The walk reached the pages people use (a broken walk would pass without looking).
    must = {
        "home",
        "schedule:calendar",
        "posts:compose",
        "posts:detail",
        "posts:edit",
        "posts:list",
        "posts:approvals",
        "accounts:list",
        "team:list",
        "team:member",
        "audit:list",
        "analytics:overview",
        "settings",
        "notifications:list",
        "mfa:setup",
    }
    assert must <= set(walked), sorted(must - set(walked))
