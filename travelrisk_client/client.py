"""Sync and async clients of the travelrisk API, on httpx.

Requests and answers are the service's own Pydantic forms (`AssessmentRequest`, `AssessmentResponse`,
`RosterStatus`, ...), errors are typed exceptions built from the problem details (`travelrisk_client.errors`),
safe requests and every POST (with an automatic `Idempotency-Key`, the same across its retries) are retried
with exponential backoff, list endpoints are iterated across their cursor pages, and rosters are uploaded
and waited on.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from risk_rules.forms import AssessmentRequest, AssessmentResponse
from service.assessments.schemas import AssessmentPage, AssessmentSummary
from service.rosters.schemas import RosterAccepted, RosterResult, RosterStatus
from travelrisk_client import _base
from travelrisk_client._base import RetryPolicy
from travelrisk_client.errors import TransportError

FINISHED = ("done", "failed")
ProgressCallback = Callable[[RosterStatus], None]


class Client:
    """A synchronous client. Use it as a context manager, or call `close()`.

    with Client("http://127.0.0.1:8000", key) as travelrisk:
        assessment = travelrisk.create_assessment(request)
    """

    def __init__(
        self,
        base_url: str,
        key: str | None = None,
        *,
        timeout: float = _base.DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self._http = httpx.Client(
            base_url=base_url, headers=_base.client_headers(key, headers), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        keyed: bool = False,
    ) -> httpx.Response:
        """Send a request; return the success response or raise the typed error.

        Safe methods are retried; a POST is retried only when `keyed` says its operation honours the
        Idempotency-Key (assessments and rosters do), with the same key on every attempt.
        """
        method = method.upper()
        sent = _base.request_headers(method, headers, idempotency_key)
        attempt = 0
        while True:
            try:
                outcome: httpx.Response | Exception = self._http.request(
                    method, path, params=_base.drop_none(params or {}), json=json, content=content, headers=sent
                )
            except httpx.TransportError as exc:
                outcome = exc
            if attempt < self.retry.max_retries and self.retry.retryable(method, keyed, outcome):
                attempt += 1
                time.sleep(self.retry.delay(attempt, outcome))
                continue
            if isinstance(outcome, Exception):
                raise TransportError(f"{method} {path}: {outcome!r}") from outcome
            return _base.check(outcome)

    # -------------------------------------------------------------- assessments

    def create_assessment(
        self, request: AssessmentRequest | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AssessmentResponse:
        """Score a trip and store it (validated locally with the server's form first)."""
        response = self.request(
            "POST", "/v1/assessments", json=_base.assessment_body(request), idempotency_key=idempotency_key, keyed=True
        )
        return AssessmentResponse.model_validate_json(response.content)

    def get_assessment(self, assessment_id: str, *, revision: int | None = None) -> AssessmentResponse:
        """One stored assessment (its latest scoring, or the given revision)."""
        path = f"/v1/assessments/{assessment_id}" + (f"/revisions/{revision}" if revision else "")
        return AssessmentResponse.model_validate_json(self.request("GET", path).content)

    def list_assessments(self, *, limit: int = 100, cursor: str | None = None, **filters: Any) -> AssessmentPage:
        """One page of the tenant's assessments, newest first (filters as in GET /v1/assessments)."""
        params = {**filters, "limit": limit, "cursor": cursor}
        return AssessmentPage.model_validate_json(self.request("GET", "/v1/assessments", params=params).content)

    def iter_assessments(self, *, page_size: int = 100, **filters: Any) -> Iterator[AssessmentSummary]:
        """Every assessment matching the filters, following `next_cursor` from page to page."""
        for item in self.iter_pages("/v1/assessments", page_size=page_size, **filters):
            yield AssessmentSummary.model_validate(item)

    def iter_pages(self, path: str, *, page_size: int = 100, **params: Any) -> Iterator[dict[str, Any]]:
        """The `items` of every page of a cursor-paged list (assessments, situations, employer disputes...)."""
        cursor = None
        while True:
            page = self.request("GET", path, params={**params, "limit": page_size, "cursor": cursor}).json()
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # -------------------------------------------------------------- rosters

    def upload_roster(
        self, trips: Iterable[AssessmentRequest | Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> RosterAccepted:
        """Upload trips (requests or plain mappings; the service reports invalid ones row by row)."""
        return self._upload(_base.roster_json(trips), "application/json", idempotency_key)

    def upload_roster_csv(self, data: str | bytes, *, idempotency_key: str | None = None) -> RosterAccepted:
        """Upload a CSV roster (the columns of GET /v1/rosters/template.csv)."""
        return self._upload(data.encode() if isinstance(data, str) else data, "text/csv", idempotency_key)

    def upload_roster_file(self, path: str | os.PathLike[str], *, idempotency_key: str | None = None) -> RosterAccepted:
        """Upload a roster file: `*.csv` as CSV, anything else as a JSON array."""
        return self._upload(*_base.roster_file(path), idempotency_key)

    def _upload(self, body: bytes, content_type: str, idempotency_key: str | None) -> RosterAccepted:
        response = self.request(
            "POST",
            "/v1/rosters",
            content=body,
            headers={"Content-Type": content_type},
            idempotency_key=idempotency_key,
            keyed=True,
        )
        return RosterAccepted.model_validate_json(response.content)

    def get_roster(self, roster_id: str) -> RosterStatus:
        """A roster's state, progress, counts by band and first errors."""
        return RosterStatus.model_validate_json(self.request("GET", f"/v1/rosters/{roster_id}").content)

    def wait_for_roster(
        self,
        roster_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 0.5,
        on_progress: ProgressCallback | None = None,
    ) -> RosterStatus:
        """Poll until the roster is `done` or `failed` and return its status; `TimeoutError` after `timeout`
        seconds. `on_progress` is called with each status read."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.get_roster(roster_id)
            if on_progress is not None:
                on_progress(status)
            if status.state in FINISHED:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"roster {roster_id} is {status.state} ({status.done} of {status.total}) after {timeout} s"
                )
            time.sleep(poll_interval)

    def roster_results(self, roster_id: str) -> list[RosterResult]:
        """One result per trip processed so far, in upload order."""
        response = self.request("GET", f"/v1/rosters/{roster_id}/results", params={"format": "jsonl"})
        return _base.model_list(RosterResult, _base.jsonl(response.text))

    def roster_results_csv(self, roster_id: str) -> str:
        """The results as CSV."""
        return self.request("GET", f"/v1/rosters/{roster_id}/results", params={"format": "csv"}).text

    def roster_template(self) -> str:
        """The CSV roster template."""
        return self.request("GET", "/v1/rosters/template.csv").text

    # -------------------------------------------------------------- the model

    def factors(self) -> list[dict[str, Any]]:
        """Every factor the rules can fire, with its weight and evidence."""
        return self.request("GET", "/v1/factors").json()["items"]

    def model_card(self) -> dict[str, Any]:
        """The active model's card."""
        return self.request("GET", "/v1/model").json()


class AsyncClient:
    """An asynchronous client with the same methods as `Client`, awaited.

    async with AsyncClient("http://127.0.0.1:8000", key) as travelrisk:
        assessment = await travelrisk.create_assessment(request)
    """

    def __init__(
        self,
        base_url: str,
        key: str | None = None,
        *,
        timeout: float = _base.DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_base.client_headers(key, headers), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        keyed: bool = False,
    ) -> httpx.Response:
        """Send a request; return the success response or raise the typed error.

        Safe methods are retried; a POST is retried only when `keyed` says its operation honours the
        Idempotency-Key (assessments and rosters do), with the same key on every attempt.
        """
        method = method.upper()
        sent = _base.request_headers(method, headers, idempotency_key)
        attempt = 0
        while True:
            try:
                outcome: httpx.Response | Exception = await self._http.request(
                    method, path, params=_base.drop_none(params or {}), json=json, content=content, headers=sent
                )
            except httpx.TransportError as exc:
                outcome = exc
            if attempt < self.retry.max_retries and self.retry.retryable(method, keyed, outcome):
                attempt += 1
                await asyncio.sleep(self.retry.delay(attempt, outcome))
                continue
            if isinstance(outcome, Exception):
                raise TransportError(f"{method} {path}: {outcome!r}") from outcome
            return _base.check(outcome)

    async def create_assessment(
        self, request: AssessmentRequest | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AssessmentResponse:
        """Score a trip and store it (validated locally with the server's form first)."""
        response = await self.request(
            "POST", "/v1/assessments", json=_base.assessment_body(request), idempotency_key=idempotency_key, keyed=True
        )
        return AssessmentResponse.model_validate_json(response.content)

    async def get_assessment(self, assessment_id: str, *, revision: int | None = None) -> AssessmentResponse:
        """One stored assessment (its latest scoring, or the given revision)."""
        path = f"/v1/assessments/{assessment_id}" + (f"/revisions/{revision}" if revision else "")
        return AssessmentResponse.model_validate_json((await self.request("GET", path)).content)

    async def list_assessments(self, *, limit: int = 100, cursor: str | None = None, **filters: Any) -> AssessmentPage:
        """One page of the tenant's assessments, newest first."""
        params = {**filters, "limit": limit, "cursor": cursor}
        return AssessmentPage.model_validate_json((await self.request("GET", "/v1/assessments", params=params)).content)

    async def iter_assessments(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[AssessmentSummary]:
        """Every assessment matching the filters, following `next_cursor` from page to page."""
        async for item in self.iter_pages("/v1/assessments", page_size=page_size, **filters):
            yield AssessmentSummary.model_validate(item)

    async def iter_pages(self, path: str, *, page_size: int = 100, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """The `items` of every page of a cursor-paged list."""
        cursor = None
        while True:
            page = (await self.request("GET", path, params={**params, "limit": page_size, "cursor": cursor})).json()
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def upload_roster(
        self, trips: Iterable[AssessmentRequest | Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> RosterAccepted:
        """Upload trips (requests or plain mappings; the service reports invalid ones row by row)."""
        return await self._upload(_base.roster_json(trips), "application/json", idempotency_key)

    async def upload_roster_csv(self, data: str | bytes, *, idempotency_key: str | None = None) -> RosterAccepted:
        """Upload a CSV roster."""
        return await self._upload(data.encode() if isinstance(data, str) else data, "text/csv", idempotency_key)

    async def upload_roster_file(
        self, path: str | os.PathLike[str], *, idempotency_key: str | None = None
    ) -> RosterAccepted:
        """Upload a roster file: `*.csv` as CSV, anything else as a JSON array."""
        return await self._upload(*_base.roster_file(path), idempotency_key)

    async def _upload(self, body: bytes, content_type: str, idempotency_key: str | None) -> RosterAccepted:
        response = await self.request(
            "POST",
            "/v1/rosters",
            content=body,
            headers={"Content-Type": content_type},
            idempotency_key=idempotency_key,
            keyed=True,
        )
        return RosterAccepted.model_validate_json(response.content)

    async def get_roster(self, roster_id: str) -> RosterStatus:
        """A roster's state, progress, counts by band and first errors."""
        return RosterStatus.model_validate_json((await self.request("GET", f"/v1/rosters/{roster_id}")).content)

    async def wait_for_roster(
        self,
        roster_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 0.5,
        on_progress: ProgressCallback | None = None,
    ) -> RosterStatus:
        """Poll until the roster is `done` or `failed`; `TimeoutError` after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = await self.get_roster(roster_id)
            if on_progress is not None:
                on_progress(status)
            if status.state in FINISHED:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"roster {roster_id} is {status.state} ({status.done} of {status.total}) after {timeout} s"
                )
            await asyncio.sleep(poll_interval)

    async def roster_results(self, roster_id: str) -> list[RosterResult]:
        """One result per trip processed so far, in upload order."""
        response = await self.request("GET", f"/v1/rosters/{roster_id}/results", params={"format": "jsonl"})
        return _base.model_list(RosterResult, _base.jsonl(response.text))

    async def roster_results_csv(self, roster_id: str) -> str:
        """The results as CSV."""
        return (await self.request("GET", f"/v1/rosters/{roster_id}/results", params={"format": "csv"})).text

    async def roster_template(self) -> str:
        """The CSV roster template."""
        return (await self.request("GET", "/v1/rosters/template.csv")).text

    async def factors(self) -> list[dict[str, Any]]:
        """Every factor the rules can fire, with its weight and evidence."""
        return (await self.request("GET", "/v1/factors")).json()["items"]

    async def model_card(self) -> dict[str, Any]:
        """The active model's card."""
        return (await self.request("GET", "/v1/model")).json()
