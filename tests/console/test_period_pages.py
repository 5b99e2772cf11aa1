"""The period of a Type II audit as pages, through Flask's test client, over the 180 simulated
days of tests/engine/test_period_scenario.py (written through engine functions at simulated
times): the strips and figures say what engine.period answers, both sides see the same, an
auditor sees their audit only, samples are reproducible from their seed and logged, and the
controls page answers `?as_of=` from the record."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select, update

from console.period import share, when
from engine import audits
from engine.db import unit_of_work
from engine.models.audit import ActivityType, Audit, AuditActivity
from engine.period import Span, audit_period, subtract
from engine.registry import get_connector
from tests.conftest import serve
from tests.console.auditor_helpers import accept, create_audit, csrf_of, invite
from tests.console.browser import chromium, page_width, screenshot
from tests.console.conftest import login_link, post_link
from tests.console.test_browser import WAIT, wait_for
from tests.engine.test_period_scenario import (
    CONTROL,
    COVERED,
    DAY,
    DISCONNECT,
    GAPS,
    OPERATING,
    OUTAGE_ERROR,
    T0,
    at,
    bucket,
    build,
)

PERIOD = {"period_start": "2026-01-01", "period_end": "2026-06-30"}
RECT = re.compile(r'<rect x="[\d.]+" y="0" width="[\d.]+" height="\d+" class="seg seg-\w+"'
                  r'(?: fill="[^"]+")? data-kind="(\w+)" data-start="([^"]+)" '
                  r'data-end="([^"]+)"><title>([^<]+)</title>')
WHOLE = Span(T0, T0 + 180 * DAY)
AWS = get_connector("aws").name


def _strip(html: str, control: str) -> list[tuple[str, Span]]:
    found = re.search(rf'data-strip="{re.escape(control)}">(.*?)</svg>', html, re.S)
    assert found, html[html.find('id="period-span"'):][:3000]
    return [(kind, Span(datetime.fromisoformat(a), datetime.fromisoformat(b)))
            for kind, a, b, _ in RECT.findall(found.group(1))]


def _section(html: str, control: str) -> str:
    found = [part for part in html.split('<li class="period-control"')
             if part.split(">", 1)[0].endswith(f'data-control="{control}"')]
    assert len(found) == 1, html[:2000]
    return found[0]


def _count(settings, activity: ActivityType) -> int:
    with unit_of_work(settings) as session:
        return int(session.scalar(select(func.count()).select_from(AuditActivity).where(
            AuditActivity.type == activity)) or 0)


@pytest.fixture
def scenario(settings, db):
    return build(settings)


def test_the_period_page_draws_what_engine_period_answers(client, auth, settings, sent,
                                                          scenario, sign_in):
    audit_id = create_audit(client, auth, **PERIOD)
    sign_in("acme")
    detail = client.get(f"/console/audits/{audit_id}").get_data(as_text=True)
    assert f'href="/console/audits/{audit_id}/period"' in detail

    page = client.get(f"/console/audits/{audit_id}/period")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:1000]
    with unit_of_work(settings) as session:
        audit = audits.get_audit(session, "acme", audit_id)
        answer = audit_period(session, audit, timedelta(seconds=settings.freshness_grace_seconds))
    cc61 = next(c for c in answer.controls if c.control.id == CONTROL)
    assert (cc61.covered, cc61.operating) == (COVERED, OPERATING)  # the scenario's own figures

    strip = _strip(html, CONTROL)
    gaps = [g.span for g in cc61.gaps]
    assert gaps == [span for span, _ in GAPS]
    assert [s for kind, s in strip if kind == "gap"] == gaps
    assert [s for kind, s in strip if kind == "exception"] == [Span(at(20), at(30))]
    operating = [s for kind, s in strip if kind == "operating"]
    assert operating == subtract([WHOLE], [*gaps, Span(at(20), at(30))])
    assert sum((s.length for s in operating), timedelta(0)) == cc61.operating
    assert "untested" not in {kind for kind, _ in strip}
    assert [s for _, s in strip] == sorted(s for _, s in strip)  # in order, the whole period
    assert strip[0][1].start == WHOLE.start and strip[-1][1].end == WHOLE.end

    unjudged = next(c for c in answer.controls  # fresh results, but nothing ever passed
                    if c.automated and c.covered and not c.operating and not c.exceptions)
    other = _strip(html, unjudged.control.id)
    assert {kind for kind, _ in other} == {"gap", "untested"}
    assert sum((s.length for k, s in other if k == "untested"), timedelta(0)) == unjudged.covered

    words = (f"covered {share(cc61.coverage)} of the period, operating "
             f"{share(cc61.operating_share)}; 1 exception, 3 gaps")
    assert f"{CONTROL}: {words}" in html  # the strip's accessible name
    section = _section(html, CONTROL)
    assert f"<strong data-coverage>{share(cc61.coverage)}</strong>" in section
    assert "so far" not in section  # the period ended
    outage, gone = GAPS[1][0], GAPS[2][0]
    assert f"{AWS} syncs failed from {when(outage.start)} to {when(outage.end)} (7 failed " \
           f"runs): {OUTAGE_ERROR}" in section
    assert f"{AWS} was disconnected from {when(DISCONNECT)} to {when(gone.end)}" in section
    assert "Nothing serving this control was connected yet" in section
    assert f"<code class=\"resource\">{bucket('exports')}</code>" in section
    assert f'failed <time datetime="{at(20).isoformat()}">' in section
    assert f"fixed {when(at(30))}" in section
    assert "3 resources judged" in section

    population = client.get(f"/console/audits/{audit_id}/period?control={CONTROL}")
    text = population.get_data(as_text=True)
    assert population.status_code == 200
    assert text.count('data-strip="') == 1 and 'id="population"' in text
    for name in ("logs", "exports", "archive"):
        assert bucket(name) in text

    hostile = client.get(f"/console/audits/{audit_id}/period",
                         query_string={"control": "<script>x</script>"})
    assert hostile.status_code == 404 and "<script>x" not in hostile.get_data(as_text=True)

    issues = client.get(f"/console/audits/{audit_id}/period?only=issues").get_data(as_text=True)
    with_issues = [c.control.id for c in answer.controls
                   if c.automated and (c.exceptions or c.gaps)]
    assert re.findall(r'data-strip="([^"]+)"', issues) == with_issues


def test_a_period_not_set_says_how_to_set_one_and_another_account_sees_nothing(
        client, auth, settings, sent, db, sign_in):
    unset = create_audit(client, auth, **PERIOD)
    with unit_of_work(settings) as session:  # an audit created before periods were required
        session.execute(update(Audit).where(Audit.id == unset).values(period_start=None,
                                                                       period_end=None))
    sign_in("acme")
    html = client.get(f"/console/audits/{unset}/period").get_data(as_text=True)
    assert 'id="period-missing"' in html and "period_start" in html and "<svg" not in html
    assert f"PUT /api/v1/audits/{unset}" in html
    type_i = create_audit(client, auth, type="type_i", period_start=None, period_end=None)
    html = client.get(f"/console/audits/{type_i}/period").get_data(as_text=True)
    assert "A Type I audit looks at one point in time" in html

    running = create_audit(client, auth, period_start="2026-01-01",
                           period_end=f"{datetime.now(UTC).year + 1}-01-01")
    html = client.get(f"/console/audits/{running}/period").get_data(as_text=True)
    assert "so far" in html and 'data-strip="CC6.1"' in html

    other = client.application.test_client()
    status, _ = post_link(other, login_link(settings, "globex"))
    assert status == 303
    refused = other.get(f"/console/audits/{running}/period")
    assert refused.status_code == 404 and "another account" in refused.get_data(as_text=True)


def test_the_auditor_sees_their_audits_period_and_draws_reproducible_samples(
        client, auth, settings, sent, scenario):
    audit_id = create_audit(client, auth, **PERIOD)
    other = create_audit(client, auth, period_start="2026-03-01", period_end="2026-04-01")
    link, _ = invite(settings, audit_id)
    assert accept(client, link).status_code == 303
    home = client.get("/auditor").get_data(as_text=True)
    assert 'href="/auditor/period"' in home

    html = client.get("/auditor/period").get_data(as_text=True)
    assert "From <time datetime=\"2026-01-01T00:00:00+00:00\">" in html  # this audit's period
    assert [s for k, s in _strip(html, CONTROL) if k == "exception"] == [Span(at(20), at(30))]
    assert 'href="/auditor/samples?control=CC6.1"' in html
    assert client.get(f"/console/audits/{other}/period").status_code == 302  # customer pages:
    assert client.get(f"/console/audits/{audit_id}/period").status_code == 302  # not for auditors

    token = csrf_of(client, "/auditor/samples")
    assert client.post("/auditor/samples", data={"control_id": CONTROL, "size": "2",
                                                 "seed": "42"}).status_code == 400
    for bad, field in (({"size": "0"}, "size"), ({"size": "101"}, "size"),
                       ({"size": "2", "seed": "-1"}, "seed"),
                       ({"size": "2", "control_id": "ZZ9.9"}, "control_id"),
                       ({"size": "2", "control_id": "CC1.1"}, "control_id")):
        answer = client.post("/auditor/samples", data={"control_id": CONTROL, **bad,
                                                       "csrf_token": token})
        assert answer.status_code in (409, 422), bad
        assert f'id="{field}-error"' in answer.get_data(as_text=True), bad
    assert _count(settings, ActivityType.SAMPLE_DRAWN) == 0

    drawn = []
    for _ in range(2):
        answer = client.post("/auditor/samples", data={"control_id": CONTROL, "size": "2",
                                                       "seed": "42", "csrf_token": token})
        text = answer.get_data(as_text=True)
        assert answer.status_code == 201, text[:1000]
        assert "Draw the same sample again with seed 42" in text
        drawn.append(re.findall(r'data-resource="([^"]+)" data-at="([^"]+)"', text))
    assert drawn[0] == drawn[1] and len(drawn[0]) == 2
    for resource, instant_text in drawn[0]:
        instant = datetime.fromisoformat(instant_text)
        status = "Failing" if resource == bucket("exports") and at(20) <= instant < at(30) \
            else "Passing"
        row = re.search(rf'data-at="{re.escape(instant_text)}">(.*?)</tr>', text, re.S)
        assert row and f"</span> {status}</span>" in row.group(1), (resource, instant_text)
    assert _count(settings, ActivityType.SAMPLE_DRAWN) == 2


def test_the_controls_page_answers_as_of_a_date(client, auth, settings, scenario, sign_in):
    sign_in("acme")
    during = client.get("/console/controls?as_of=2026-01-26")
    html = during.get_data(as_text=True)
    assert during.status_code == 200, html[:1000]
    assert "As it stood on <strong>26 January 2026, 00:00 UTC</strong>" in html
    assert 'href="/console/controls">back to now' in html
    assert re.search(r'id="control-soc2-cc6.1" data-status="failing"', html)
    assert bucket("exports") in html

    link = re.search(r'href="(/console/resources/\d+\?as_of=[^"]+)"><code class="resource">'
                     + re.escape(bucket("exports")), html)
    assert link, html[:2000]
    resource = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    banner = re.search(r'id="as-of-banner">(.*?)</div>', resource, re.S)
    assert banner and "26 January 2026, 00:00 UTC" in banner.group(1)
    assert "</span> Failing</span>" in banner.group(1)
    assert resource.count("(in force then)") == 1
    path = link.group(1).split("?")[0]
    assert client.get(f"{path}?as_of=soon").status_code == 422
    assert "(in force then)" not in client.get(path).get_data(as_text=True)

    after = client.get("/console/controls?as_of=2026-02-15T12:00:00Z").get_data(as_text=True)
    assert re.search(r'id="control-soc2-cc6.1" data-status="passing"', after)
    assert bucket("exports") not in after

    between = client.get("/console/controls?as_of=2026-04-15").get_data(as_text=True)
    assert 'id="as-of-empty"' in between  # disconnected, not yet reconnected
    before = client.get("/console/controls?as_of=2025-06-01")
    assert before.status_code == 200 and 'id="as-of-empty"' in before.get_data(as_text=True)

    assert 'id="as-of-empty"' in client.get("/console/controls?as_of=0001-01-01").get_data(
        as_text=True)
    now = client.get("/console/controls?as_of=+")  # the form sent empty: as things are now
    assert now.status_code == 200 and "As it stood on" not in now.get_data(as_text=True)
    for bad in ("yesterday", "2026-13-01", f"{datetime.now(UTC).year + 1}-01-01", "9" * 50,
                "0001-01-01T00:00:00+14:00", "2026-01-01\x00"):
        refused = client.get("/console/controls", query_string={"as_of": bad})
        text = refused.get_data(as_text=True)
        assert refused.status_code == 422 and 'id="as-of-error"' in text, bad
        assert 'aria-invalid="true"' in text and "As it stood on" not in text


@pytest.mark.slow
def test_the_period_page_in_chromium_at_1280_and_390_px(client, auth, settings, scenario):
    audit_id = create_audit(client, auth, **PERIOD)
    with serve(client.application) as server, chromium() as driver:
        driver.get(server + login_link(settings, "acme").removeprefix(settings.public_base_url))
        wait_for(driver, "#framework-soc2")
        driver.get(f"{server}/console/audits/{audit_id}/period")
        strip = wait_for(driver, f"svg[data-strip='{CONTROL}']")
        assert strip.find_element(By.TAG_NAME, "title").get_attribute("textContent").startswith(
            f"{CONTROL}: covered ")
        kinds = [r.get_attribute("data-kind") for r in strip.find_elements(By.TAG_NAME, "rect")]
        assert kinds.count("gap") == 3 and kinds.count("exception") == 1 and "operating" in kinds
        assert strip.size["width"] > 300  # drawn, not collapsed
        assert page_width(driver, 390) <= 390  # a phone reads it without scrolling sideways

        # Without a mouse: tick "only controls with exceptions or gaps" and send the form.
        box = driver.find_element(By.ID, "only-issues")
        driver.execute_script("arguments[0].focus()", box)
        box.send_keys(Keys.SPACE)
        box.send_keys(Keys.ENTER)
        WebDriverWait(driver, WAIT).until(lambda d: "only=issues" in d.current_url)
        wait_for(driver, f"svg[data-strip='{CONTROL}']")
        driver.get(f"{server}/console/audits/{audit_id}/period?control={CONTROL}")
        wait_for(driver, "#population")
        screenshot(driver, "period", 1280, max_height=1400)

        # "Show as it stood on …" from the keyboard; the board's own filters stay the first.
        driver.get(f"{server}/console/controls")
        first = wait_for(driver, ".filters button[type=submit]")
        assert first.find_element(By.XPATH, "..").find_elements(By.ID, "filter-status")
        field = driver.find_element(By.ID, "as-of")
        field.send_keys("2026-01-26", Keys.ENTER)
        banner = wait_for(driver, "#as-of-banner")
        assert "26 January 2026, 00:00 UTC" in banner.text
        assert page_width(driver, 390) <= 390
