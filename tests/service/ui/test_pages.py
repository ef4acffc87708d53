"""The workspace's pages through the application: roles, tenants, the review form, reference-data forms,
the charts as drawn, security headers and the offline API docs."""

from __future__ import annotations

import re
import uuid
from html import unescape
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient

from service.keys.models import Role
from service.middleware import PAGE_POLICY
from service.ui.charts import logit
from tests.service.conftest import Tenant
from tests.service.review_helpers import create, severe_trip
from tests.service.ui.helpers import sign_in


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script" and not dict(attrs).get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def all(self, tag: str, css: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and (css is None or css in (a.get("class") or "").split())]


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def review_form_shown(html: str) -> bool:
    return 'class="stack review-form"' in html


# ---------------------------------------------------------------------------------------------
# Roles and tenants


def test_requester_reads_its_tenant_assessments_without_review_form(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip("REQ-1"))
    sign_in(client, tenant.keys[Role.requester])
    listing = client.get("/ui/assessments")
    assert listing.status_code == 200 and "REQ-1" in listing.text
    page = client.get(f"/ui/assessments/{assessment['id']}")
    assert page.status_code == 200
    assert not review_form_shown(page.text)
    assert 'href="/ui/queue"' not in page.text
    queue = client.get("/ui/queue")
    assert queue.status_code == 403
    assert "may not open the review queue" in queue.text


def test_nobody_sees_another_tenants_assessment(client: TestClient, make_tenant: Any) -> None:
    owner, other = make_tenant(), make_tenant()
    assessment = create(client, owner, severe_trip("SECRET-REF"))
    for role in (Role.requester, Role.reviewer, Role.admin):
        client.cookies.clear()
        sign_in(client, other.keys[role])
        page = client.get(f"/ui/assessments/{assessment['id']}")
        assert page.status_code == 404
        assert "SECRET-REF" not in page.text
        assert "SECRET-REF" not in client.get("/ui/assessments").text
        if role is not Role.requester:
            assert "SECRET-REF" not in client.get("/ui/queue").text
        posted = client.post(
            f"/ui/assessments/{assessment['id']}/reviews",
            data={
                "csrf_token": sign_in(client, other.keys[role]),
                "decision": "approved",
                "revision": "1",
                "rationale": "x",
            },
        )
        assert posted.status_code in (403, 404)
    listed = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=owner.auth(Role.reviewer))
    assert listed.json()["items"] == []


def test_a_missing_assessment_or_kind_of_record_is_a_404_page_saying_which(client: TestClient, tenant: Tenant) -> None:
    sign_in(client, tenant.keys[Role.requester])
    missing = client.get(f"/ui/assessments/{'x' * 70}")
    assert missing.status_code == 404 and "<html" in missing.text
    assert f"No assessment '{'x' * 64}' in your tenant." in unescape(missing.text)
    kind = client.get(f"/ui/reference/{'y' * 50}")
    assert kind.status_code == 404
    assert f"There is no kind of reference record called '{'y' * 40}'." in unescape(kind.text)


def test_lists_link_their_next_page_with_the_filters_and_refuse_a_broken_link(
    client: TestClient, tenant: Tenant
) -> None:
    reference = f"PAGE-{uuid.uuid4().hex[:8]}"
    made = [create(client, tenant, severe_trip(reference))["id"] for _ in range(26)]
    sign_in(client, tenant.keys[Role.requester])
    first = client.get("/ui/assessments", params={"traveler_reference": reference, "band": ""})
    assert first.status_code == 200
    link = re.search(r'<a href="([^"]+)">Next page</a>', first.text)
    assert link is not None
    path, _, query = unescape(link.group(1)).partition("?")
    assert path == "/ui/assessments" and re.fullmatch(rf"traveler_reference={reference}&cursor=[^&]+", query)
    second = client.get(unescape(link.group(1)))
    assert second.status_code == 200 and made[0] in second.text and "Next page" not in second.text
    client.cookies.clear()
    sign_in(client, tenant.keys[Role.reviewer])
    for url in ("/ui/assessments", "/ui/queue", "/ui/reference/situations"):
        broken = client.get(url, params={"cursor": "bm90LWEtY3Vyc29y"})
        assert broken.status_code == 422, url
        assert "The page link is not valid: go back to the first page." in broken.text, url


def test_analyst_has_no_assessment_pages(client: TestClient, tenant: Tenant) -> None:
    sign_in(client, tenant.keys[Role.analyst])
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/reference/situations"
    assert client.get("/ui/assessments").status_code == 403


# ---------------------------------------------------------------------------------------------
# The queue and the review form


def test_queue_lists_open_reviews_with_what_a_reviewer_needs(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip("Q-1"))
    sign_in(client, tenant.keys[Role.reviewer])
    page = client.get("/ui/queue")
    assert page.status_code == 200
    row = re.search(r"<tr>\s*<td><span class=\"band band-severe\">.*?</tr>", page.text, re.S)
    assert row is not None
    text = re.sub(r"<[^>]+>", " ", row.group(0))
    assert "Q-1" in text and "TH, CN" in text and "2018-12-04" in text and "2018-12-20" in text
    assert assessment["factors"][0]["title"].replace("'", "&#39;") in row.group(0)
    assert "pending" in text and "min" in text
    assert "Q-1" not in client.get("/ui/queue?band=high").text


def test_a_review_recorded_through_the_form_moves_the_state(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip())
    token = sign_in(client, tenant.keys[Role.reviewer])
    page = client.get(f"/ui/assessments/{assessment['id']}")
    assert review_form_shown(page.text)
    # The conditions are pre-filled from the mitigations.
    prefilled = re.search(r'<textarea id="conditions"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert (
        prefilled is not None
        and prefilled.group(1).splitlines()[0].replace("&#39;", "'") == assessment["mitigations"][0]
    )
    response = client.post(
        f"/ui/assessments/{assessment['id']}/reviews",
        data={
            "csrf_token": token,
            "decision": "approved_with_conditions",
            "revision": "1",
            "rationale": "Conference only.",
            "conditions": "Check in daily.\n\n  Register with the consulate.  ",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    history = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth(Role.reviewer)).json()
    assert history["state"] == "approved_with_conditions"
    assert history["items"][0]["conditions"] == ["Check in daily.", "Register with the consulate."]
    assert history["items"][0]["holder"] == tenant.holder(Role.reviewer)
    after = client.get(f"/ui/assessments/{assessment['id']}")
    assert 'data-state="approved_with_conditions"' in after.text
    assert not review_form_shown(after.text)


def test_conditions_go_only_with_approved_with_conditions(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip())
    token = sign_in(client, tenant.keys[Role.reviewer])
    response = client.post(
        f"/ui/assessments/{assessment['id']}/reviews",
        data={"csrf_token": token, "decision": "rejected", "revision": "1", "rationale": "No.", "conditions": "x"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    history = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth(Role.reviewer)).json()
    assert history["items"][0]["decision"] == "rejected" and history["items"][0]["conditions"] == []


def test_a_decision_on_a_decided_trip_comes_back_with_the_conflict_and_stores_nothing(
    client: TestClient, tenant: Tenant
) -> None:
    assessment = create(client, tenant, severe_trip())
    token = sign_in(client, tenant.keys[Role.reviewer])
    url = f"/ui/assessments/{assessment['id']}/reviews"
    first = {"csrf_token": token, "decision": "rejected", "revision": "1", "rationale": "No."}
    assert client.post(url, data=first, follow_redirects=False).status_code == 303
    again = client.post(url, data={**first, "decision": "approved", "rationale": "Yes after all."})
    assert again.status_code == 409 and "<html" in again.text
    assert f"Assessment '{assessment['id']}' is already decided (rejected)" in unescape(again.text)
    assert 'id="review-error"' in again.text
    history = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth(Role.reviewer)).json()
    assert [item["decision"] for item in history["items"]] == ["rejected"]


def test_an_invalid_review_comes_back_with_its_errors_and_stores_nothing(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip())
    token = sign_in(client, tenant.keys[Role.reviewer])
    for data, field, status in (
        ({"decision": "approved", "revision": "1", "rationale": "  "}, "rationale-error", 422),
        ({"revision": "1", "rationale": "why"}, "decision-error", 422),
        (
            {"decision": "approved_with_conditions", "revision": "1", "rationale": "why", "conditions": ""},
            "conditions-error",
            422,
        ),
        ({"decision": "approved", "revision": "7", "rationale": "why"}, "review-error", 422),
    ):
        response = client.post(f"/ui/assessments/{assessment['id']}/reviews", data={"csrf_token": token, **data})
        assert response.status_code == status, (data, response.text[:300])
        assert f'id="{field}"' in response.text, data
        assert review_form_shown(response.text)
    history = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth(Role.reviewer)).json()
    assert history["items"] == [] and history["state"] == "pending"


def test_whoever_requested_the_trip_gets_no_form_and_is_refused(client: TestClient, tenant: Tenant) -> None:
    # An admin may request and review; not both on one trip.
    assessment = create(client, tenant, severe_trip(), role="admin")
    token = sign_in(client, tenant.keys[Role.admin])
    page = client.get(f"/ui/assessments/{assessment['id']}")
    assert not review_form_shown(page.text)
    assert "You requested this assessment" in page.text
    refused = client.post(
        f"/ui/assessments/{assessment['id']}/reviews",
        data={"csrf_token": token, "decision": "approved", "revision": "1", "rationale": "mine"},
    )
    assert refused.status_code == 403
    assert "You requested this assessment" in refused.text
    history = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth(Role.admin)).json()
    assert history["items"] == []


def test_a_requester_key_may_not_post_a_review(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip())
    token = sign_in(client, tenant.keys[Role.requester])
    response = client.post(
        f"/ui/assessments/{assessment['id']}/reviews",
        data={"csrf_token": token, "decision": "approved", "revision": "1", "rationale": "x"},
    )
    assert response.status_code == 403


# ---------------------------------------------------------------------------------------------
# The assessment page as drawn


def test_the_waterfall_has_one_bar_per_factor_and_ends_at_the_score(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip())
    sign_in(client, tenant.keys[Role.reviewer])
    page = parse(client.get(f"/ui/assessments/{assessment['id']}").text)
    bars = page.all("rect", "wf-bar")
    assert [b["data-factor"] for b in bars] == [f["id"] for f in assessment["factors"]]
    assert float(bars[-1]["data-end"] or "nan") == assessment["score"]["log_odds"]
    (svg,) = page.all("svg", "waterfall")
    assert abs(float(svg["data-baseline"] or "nan") - logit(assessment["baseline"]["probability"])) < 1e-6
    start = float(svg["data-baseline"] or "nan")
    for bar in bars:
        assert abs(float(bar["data-start"] or "nan") - start) < 1e-6
        start = float(bar["data-end"] or "nan")


def test_factors_show_their_records_linked_and_their_quotes_with_source_titles(
    client: TestClient, tenant: Tenant
) -> None:
    assessment = create(client, tenant, severe_trip())
    sign_in(client, tenant.keys[Role.reviewer])
    html = client.get(f"/ui/assessments/{assessment['id']}").text
    situation = next(
        ref for f in assessment["factors"] for ref in f["derived_from"] if ref.startswith("situation:")
    ).split(":", 1)[1]
    assert f'href="/ui/reference/situations/{situation}"' in html
    assert "Beijing Suffers Major Loss from Its Hostage Diplomacy (Scott Kennedy, CSIS" in html
    record = client.get(f"/ui/reference/situations/{situation}")
    assert record.status_code == 200 and "History" in record.text


# ---------------------------------------------------------------------------------------------
# Reference data


def test_the_situation_table_searches_and_answers_htmx_with_rows(client: TestClient, tenant: Tenant) -> None:
    sign_in(client, tenant.keys[Role.requester])
    full = client.get("/ui/reference/situations?q=meng+extradition")
    assert full.status_code == 200 and "<html" in full.text
    assert "Meng Wanzhou held in Canada" in full.text
    assert "Kovrig" not in re.sub(r"<thead>.*?</thead>", "", full.text.split('id="record-rows"')[1], flags=re.S)
    rows = client.get("/ui/reference/situations?q=meng", headers={"HX-Request": "true"})
    assert "<html" not in rows.text and rows.text.lstrip().startswith("<tr>")
    none = client.get("/ui/reference/employer-disputes?q=zzzz-nothing")
    assert "No employer disputes match." in none.text
    assert client.get("/ui/reference/situations?active_on=2019-13-45").status_code == 422
    assert client.get("/ui/reference/nonsense").status_code == 404


def test_only_analysts_get_reference_forms(client: TestClient, tenant: Tenant) -> None:
    token = sign_in(client, tenant.keys[Role.reviewer])
    assert "Add a situation" not in client.get("/ui/reference/situations").text
    assert client.get("/ui/reference/situations/new").status_code == 403
    response = client.post("/ui/reference/situations", data={"csrf_token": token, "title": "x"})
    assert response.status_code == 403


def _situation_form(token: str, **overrides: str) -> dict[str, str]:
    form = {
        "csrf_token": token,
        "id": f"ui-{uuid.uuid4().hex[:8]}",
        "home_country": "AU",
        "destination": "CN",
        "kind": "trade_dispute",
        "title": "Barley and wine tariffs",
        "started_on": "2020-05-18",
        "ended_on": "",
        "severity": "medium",
        "start_precision": "day",
        "sources.0.title": "Tariffs announced (a publication)",
        "sources.0.date": "2020-05",
    }
    form.update(overrides)
    return form


def test_an_analyst_adds_and_edits_a_situation_with_the_api_checks(client: TestClient, tenant: Tenant) -> None:
    token = sign_in(client, tenant.keys[Role.analyst])
    form = _situation_form(token)
    created = client.post("/ui/reference/situations", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == f"/ui/reference/situations/{form['id']}"
    stored = client.get(f"/v1/situations/{form['id']}", headers=tenant.auth(Role.analyst)).json()
    assert stored["title"] == "Barley and wine tariffs" and stored["ended_on"] is None
    assert stored["sources"][0]["title"] == "Tariffs announced (a publication)"

    edit = {**form, "ended_on": "2023-03-01", "title": "Barley tariffs"}
    del edit["id"]
    changed = client.post(f"/ui/reference/situations/{form['id']}", data=edit, follow_redirects=False)
    assert changed.status_code == 303, changed.text
    history = client.get(f"/v1/situations/{form['id']}/history", headers=tenant.auth(Role.analyst)).json()
    assert [r["revision"] for r in history["items"]] == [1, 2]
    page = client.get(f"/ui/reference/situations/{form['id']}").text
    assert "Barley tariffs" in page and "2023-03-01" in page


def test_an_invalid_record_form_names_each_field_and_stores_nothing(client: TestClient, tenant: Tenant) -> None:
    token = sign_in(client, tenant.keys[Role.analyst])
    form = _situation_form(
        token,
        home_country="CN",
        ended_on="2019-01-01",
        **{
            "sources.0.title": "",
            "sources.0.date": "",
            "sources.0.source": "zhang-beijings-new-hostage-diplomacy",
            "sources.0.quote": "words that are not in the source",
        },
    )
    response = client.post("/ui/reference/situations", data=form)
    assert response.status_code == 422
    for field in ("destination", "ended_on", "sources.0.quote"):
        assert f'href="#f-{field.replace(".", "-")}"' in response.text, field
    assert 'value="Barley and wine tariffs"' in response.text  # what was typed comes back
    missing = client.get(f"/v1/situations/{form['id']}", headers=tenant.auth(Role.analyst))
    assert missing.status_code == 404


def test_an_employer_dispute_takes_aliases_one_per_line(client: TestClient, tenant: Tenant) -> None:
    token = sign_in(client, tenant.keys[Role.analyst])
    record_id = f"ui-{uuid.uuid4().hex[:8]}"
    response = client.post(
        "/ui/reference/employer-disputes",
        data={
            "csrf_token": token,
            "id": record_id,
            "name": "Example Mining Ltd",
            "aliases": "Example Mining\n\nEMX ",
            "destination": "CN",
            "kind": "commercial_dispute",
            "started_on": "2021-01-01",
            "start_precision": "day",
            "sources.1.title": "Court filing",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    stored = client.get(f"/v1/employer-disputes/{record_id}", headers=tenant.auth(Role.analyst)).json()
    assert stored["aliases"] == ["Example Mining", "EMX"]
    assert [s["title"] for s in stored["sources"]] == ["Court filing"]


# ---------------------------------------------------------------------------------------------
# Headers, assets and the API docs


def test_pages_send_a_strict_policy_and_carry_no_inline_script_or_style(client: TestClient, tenant: Tenant) -> None:
    assessment = create(client, tenant, severe_trip())
    sign_in(client, tenant.keys[Role.admin])
    for path in (
        "/ui/sign-in",
        "/ui/queue",
        "/ui/assessments",
        f"/ui/assessments/{assessment['id']}",
        "/ui/model",
        "/ui/reference/situations",
        "/ui/reference/employer-disputes",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == PAGE_POLICY
        assert "frame-ancestors 'none'" in PAGE_POLICY and "script-src 'self'" in PAGE_POLICY
        assert "'unsafe-inline'" not in PAGE_POLICY
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        page = parse(response.text)
        assert page.inline_scripts == [], path
        assert not [a for _, a in page.tags if "style" in a or any(k.startswith("on") for k in a)], path
        for script in page.all("script"):
            assert (script["src"] or "").startswith("/ui/static/"), path
        # Every control has a label.
        labelled = {a.get("for") for a in page.all("label")}
        for tag in ("input", "select", "textarea"):
            for control in page.all(tag):
                if control.get("type") in ("hidden", "radio", "submit"):
                    continue
                assert control.get("id") in labelled, (path, control)
        assert page.tags[page.tags.index(next(t for t in page.tags if t[0] == "body")) + 1][1].get("class") == (
            "skip-link"
        )


def test_the_api_docs_work_offline_from_the_package(client: TestClient) -> None:
    for path, assets in (
        (
            "/docs",
            (
                "/ui/static/vendor/swagger-ui/swagger-ui-bundle.js",
                "/ui/static/vendor/swagger-ui/swagger-ui.css",
                "/ui/static/docs.js",
            ),
        ),
        ("/redoc", ("/ui/static/vendor/redoc/redoc.standalone.js",)),
    ):
        page = client.get(path)
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text, path
        assert parse(page.text).inline_scripts == []
        assert "script-src 'self'" in page.headers["content-security-policy"]
        for asset in assets:
            assert asset in page.text
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 200, asset
    assert client.get("/ui/static/vendor/htmx/htmx.min.js").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_workspace_routes_stay_out_of_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui") or p in ("/docs", "/redoc")]


def test_an_invalid_edit_comes_back_and_changes_nothing(client: TestClient, tenant: Tenant) -> None:
    token = sign_in(client, tenant.keys[Role.analyst])
    form = _situation_form(token)
    assert client.post("/ui/reference/situations", data=form, follow_redirects=False).status_code == 303
    edit = {**form, "ended_on": "2001-01-01"}
    del edit["id"]
    response = client.post(f"/ui/reference/situations/{form['id']}", data=edit)
    assert response.status_code == 422
    assert 'href="#f-ended_on"' in response.text and 'value="2001-01-01"' in response.text
    stored = client.get(f"/v1/situations/{form['id']}", headers=tenant.auth(Role.analyst)).json()
    assert stored["revision"] == 1 and stored["ended_on"] is None


def test_every_declared_kind_of_dated_record_gets_its_pages(client: TestClient, tenant: Tenant) -> None:
    from service.dated_records.kinds import KINDS

    sign_in(client, tenant.keys[Role.analyst])
    for kind in KINDS:
        slug = kind.collection.rsplit("/", 1)[-1]
        table = client.get(f"/ui/reference/{slug}")
        assert table.status_code == 200, slug
        for declared in kind.filters:
            assert f'name="{declared.name}"' in table.text, (slug, declared.name)
        assert client.get(f"/ui/reference/{slug}/new").status_code == 200, slug
    assert client.get("/ui/reference/situations?kind=not-a-kind").status_code == 422
    assert "Meng" in client.get("/ui/reference/situations?home_country=ca&destination=CN").text
    assert "Meng" not in client.get("/ui/reference/situations?home_country=AU").text.split("record-rows")[1]
