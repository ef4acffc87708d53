"""The workspace in a real browser: Debian's Chromium driven by Playwright against `travelrisk serve`.

Without Chromium (or Playwright) these tests skip and say why; with TRAVELRISK_REQUIRE_BROWSER=1 (as in
CI) a missing browser fails them instead. Each test saves a screenshot under TRAVELRISK_SCREENSHOT_DIR
(default `test-results/screenshots`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.assessments.examples import REQUEST_EXAMPLE
from service.db import create_db_engine, create_session_factory, session_scope
from service.keys import service as keys
from service.keys.models import Role
from tests.service.conftest import PROJECT_ROOT, Server, make_settings

REQUIRE_ENV = "TRAVELRISK_REQUIRE_BROWSER"
CHROMIUM_ENV = "TRAVELRISK_CHROMIUM"
SCREENSHOT_ENV = "TRAVELRISK_SCREENSHOT_DIR"


def _chromium() -> str | None:
    candidate = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if Path(candidate).is_file() else None


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 makes the browser tests required")
    pytest.skip(f"{reason} (install Debian's `chromium`, or set {CHROMIUM_ENV})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is in the test extra
        _unavailable("Playwright is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(os.environ.get(SCREENSHOT_ENV) or PROJECT_ROOT / "test-results" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Workspace:
    """A running server over its own SQLite file, with one tenant's keys and two severe assessments.

    The requester key and `same_person_reviewer` belong to one holder (a staff member with two keys).
    """

    base_url: str
    keys: dict[Role, str]
    same_person_reviewer: str
    other_tenant_key: str
    severe: dict[str, Any]
    to_review: dict[str, Any]


HOLDERS = {Role.requester: "staff-ana", Role.reviewer: "staff-bo", Role.admin: "staff-cy", Role.analyst: None}


def _assess(base_url: str, key: str, reference: str) -> dict[str, Any]:
    body = json.loads(json.dumps(REQUEST_EXAMPLE))
    body["traveler"]["reference"] = reference
    response = httpx.post(
        f"{base_url}/v1/assessments", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert response.status_code == 201, response.text
    assert response.json()["score"]["band"] == "severe"
    return response.json()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'travelrisk.db'}"
    server = Server(url, folder / "server.log").start()
    try:
        engine = create_db_engine(make_settings(url))
        tenant = f"ui-{uuid.uuid4().hex[:8]}"
        with session_scope(create_session_factory(engine)) as session:
            issued = {role: keys.create_key(session, tenant, role, HOLDERS[role]).secret for role in Role}
            same_person = keys.create_key(session, tenant, Role.reviewer, HOLDERS[Role.requester]).secret
            other = keys.create_key(session, f"{tenant}-other", Role.reviewer, "staff-dee").secret
        engine.dispose()
        severe = _assess(server.base_url, issued[Role.requester], "E-SEVERE-1")
        to_review = _assess(server.base_url, issued[Role.requester], "E-SEVERE-2")
        yield Workspace(server.base_url, issued, same_person, other, severe, to_review)
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, workspace: Workspace) -> Iterator[Any]:
    context = browser.new_context(base_url=workspace.base_url, viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.console_problems = problems  # type: ignore[attr-defined]
    yield opened
    context.close()


def sign_in(page: Any, key: str, target: str = "/ui/") -> None:
    page.goto(f"/ui/sign-in?next={target}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def shoot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def no_policy_violations(page: Any) -> None:
    violations = [m for m in page.console_problems if "Content Security Policy" in m or "Refused" in m]
    assert violations == []


def test_sign_in_open_the_queue_and_a_severe_assessment(page: Any, workspace: Workspace, screenshots: Path) -> None:
    sign_in(page, workspace.keys[Role.reviewer])
    assert page.url.endswith("/ui/queue")
    row = page.get_by_role("row").filter(has_text="E-SEVERE-1")
    assert "severe" in row.inner_text().lower()
    assert "CN" in row.inner_text()
    shoot(page, screenshots, "01-queue")

    row.get_by_role("link", name="E-SEVERE-1").click()
    page.wait_for_load_state()
    assert page.locator("#band").inner_text() == "severe"
    factors = workspace.severe["factors"]
    bars = page.locator("svg.waterfall rect.wf-bar")
    assert bars.count() == len(factors) == page.locator("li.factor").count()
    assert [bars.nth(i).get_attribute("data-factor") for i in range(bars.count())] == [f["id"] for f in factors]
    last = bars.nth(bars.count() - 1)
    score = workspace.severe["score"]["log_odds"]
    assert float(last.get_attribute("data-end")) == pytest.approx(score, abs=1e-6)
    marker_x = float(page.locator("svg.waterfall rect.wf-score").get_attribute("x")) + 3
    assert float(last.get_attribute("data-x-end")) == pytest.approx(marker_x, abs=0.05)
    # Each bar starts where the one before it ended, from the baseline on.
    previous = float(page.locator("svg.waterfall").get_attribute("data-baseline"))
    for i in range(bars.count()):
        assert float(bars.nth(i).get_attribute("data-start")) == pytest.approx(previous, abs=1e-6)
        previous = float(bars.nth(i).get_attribute("data-end"))
    # The evidence is quoted with its source's title, and the records are linked.
    assert page.locator("figure.quote figcaption").first.inner_text().startswith("—")
    no_policy_violations(page)
    shoot(page, screenshots, "02-severe-assessment")
    page.locator("svg.waterfall").screenshot(path=str(screenshots / "02b-waterfall.png"))


def test_wrong_key_shows_the_form_again_without_the_key(page: Any, screenshots: Path) -> None:
    sign_in(page, "trk_0000_not-a-real-key")
    assert "/ui/sign-in" in page.url
    assert page.get_by_role("alert").inner_text().startswith("That API key is not valid")
    assert page.get_by_label("API key").input_value() == ""
    assert "not-a-real-key" not in page.content()
    shoot(page, screenshots, "03-wrong-key")


def test_a_form_posted_without_its_csrf_token_is_refused(page: Any, workspace: Workspace, screenshots: Path) -> None:
    sign_in(page, workspace.keys[Role.reviewer])
    # Remove the token from the sign-out form, as a forged cross-site form would lack it, and send it.
    page.locator("form[action='/ui/sign-out'] input[name=csrf_token]").evaluate("e => e.remove()")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Forbidden"
    assert "security token" in page.get_by_role("alert").inner_text()
    shoot(page, screenshots, "04-csrf-refused")
    # The session survived the forged request.
    page.goto("/ui/queue")
    assert page.url.endswith("/ui/queue")


def test_submit_a_review_and_see_the_state_change(page: Any, workspace: Workspace, screenshots: Path) -> None:
    sign_in(page, workspace.keys[Role.reviewer])
    page.get_by_role("row").filter(has_text="E-SEVERE-2").get_by_role("link").click()
    page.wait_for_load_state()
    assert page.locator("#review-state-now").get_attribute("data-state") == "pending"
    # The conditions come pre-filled from the mitigations.
    conditions = page.get_by_label("Conditions (one per line", exact=False)
    assert conditions.input_value().splitlines() == workspace.to_review["mitigations"]
    page.get_by_role("radio", name="approved with conditions").check()
    page.get_by_label("Rationale (required)").fill("Conference only; no meetings outside the venue.")
    conditions.fill("Register the trip with the consulate.\nDaily check-in with the employer.")
    page.locator("#review").screenshot(path=str(screenshots / "05a-review-form-filled.png"))
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_load_state()
    assert page.locator("#review-state-now").get_attribute("data-state") == "approved_with_conditions"
    assert page.locator("#review-state").inner_text() == "approved with conditions"
    decisions = page.locator("ol.decisions").inner_text()
    assert "staff-bo" in decisions and "Daily check-in with the employer." in decisions
    assert page.locator("form.review-form").count() == 0
    no_policy_violations(page)
    shoot(page, screenshots, "05b-review-recorded")
    page.locator("#review").screenshot(path=str(screenshots / "05c-review-section.png"))
    # Decided trips leave the queue.
    page.goto("/ui/queue")
    assert page.get_by_role("row").filter(has_text="E-SEVERE-2").count() == 0


def test_requester_cannot_review_its_own_trip(page: Any, workspace: Workspace, screenshots: Path) -> None:
    # The requester's own role sees the assessment but no review form.
    sign_in(page, workspace.keys[Role.requester])
    assert page.url.endswith("/ui/assessments")
    page.get_by_role("link", name="E-SEVERE-1").first.click()
    page.wait_for_load_state()
    assert page.locator("#band").inner_text() == "severe"
    assert page.locator("form.review-form").count() == 0
    assert page.get_by_role("link", name="Review queue").count() == 0
    shoot(page, screenshots, "06a-requester-view")
    page.context.clear_cookies()

    # The same person with a reviewer key: told why, and no form.
    sign_in(page, workspace.same_person_reviewer, f"/ui/assessments/{workspace.severe['id']}")
    assert page.locator("form.review-form").count() == 0
    assert "You requested this assessment" in page.locator("#review-notice").inner_text()
    shoot(page, screenshots, "06b-same-holder-reviewer")
    # A decision posted anyway (with a valid token) is refused with the reason, and nothing is recorded.
    token = page.locator("form[action='/ui/sign-out'] input[name=csrf_token]").get_attribute("value")
    response = page.request.post(
        f"/ui/assessments/{workspace.severe['id']}/reviews",
        form={"csrf_token": token, "decision": "approved", "revision": "1", "rationale": "mine"},
    )
    assert response.status == 403
    assert "You requested this assessment" in response.text()
    page.reload()
    assert page.locator("#review-state-now").get_attribute("data-state") == "pending"


def test_another_tenant_cannot_open_the_assessment(page: Any, workspace: Workspace, screenshots: Path) -> None:
    sign_in(page, workspace.other_tenant_key)
    page.goto(f"/ui/assessments/{workspace.severe['id']}")
    assert page.get_by_role("heading", level=1).inner_text() == "Not Found"
    assert "E-SEVERE-1" not in page.content()
    shoot(page, screenshots, "07-other-tenant")


def test_keyboard_reaches_the_skip_link_first_and_it_moves_focus(page: Any, workspace: Workspace) -> None:
    sign_in(page, workspace.keys[Role.reviewer])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_model_page_draws_the_forest_plot(page: Any, workspace: Workspace, screenshots: Path) -> None:
    sign_in(page, workspace.keys[Role.analyst], "/ui/model")
    model = httpx.get(
        f"{workspace.base_url}/v1/model", headers={"Authorization": f"Bearer {workspace.keys[Role.analyst]}"}
    ).json()
    assert page.locator("svg.forest g.fp-row").count() == len(model["factors"])
    population = page.locator("table.population")
    assert population.locator("tbody tr").count() == len(model["data"]["population"])
    assert "2014年中国入境旅游" in population.inner_text()  # the arrivals by nationality the mix cites
    validation = page.locator("section[aria-labelledby=validation-heading]")
    # Each figure with its interval, and each target marked met or missed as the card says.
    assert validation.locator("text=target missed").count() + validation.locator("text=target met").count() >= 4
    no_policy_violations(page)
    shoot(page, screenshots, "08-model")
    page.locator("svg.forest").screenshot(path=str(screenshots / "08b-forest-plot.png"))


def test_analyst_searches_and_adds_a_situation(page: Any, workspace: Workspace, screenshots: Path) -> None:
    sign_in(page, workspace.keys[Role.analyst], "/ui/reference/situations")
    page.get_by_label("Search").fill("Meng")
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    assert page.locator("#record-rows tr").count() >= 1
    assert "Meng" in page.locator("#record-rows").inner_text()
    shoot(page, screenshots, "09-situations-search")

    page.get_by_role("link", name="Add a situation").click()
    page.get_by_label("Home country (required)").fill("AU")
    page.get_by_label("Destination (required)").select_option("CN")
    page.get_by_label("Kind (required)").select_option("diplomatic_dispute")
    page.get_by_label("Title (required)").fill("Browser-test dispute")
    page.get_by_label("Started on (required)").fill("2020-04-01")
    page.get_by_label("Severity (required)").select_option("medium")
    page.get_by_label("Publication title").first.fill("A browser test's own citation")
    page.get_by_role("button", name="Add situation").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Browser-test dispute"
    assert "created" in page.locator("ol.timeline").inner_text()
    no_policy_violations(page)
    shoot(page, screenshots, "10-situation-added")
