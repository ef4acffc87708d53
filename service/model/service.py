"""The scoring engine the service holds: the active model and rules, and the reference data in the database.

The engine is loaded once per worker process. When the model artifact is missing the service still starts
(`/readyz` says why it is not ready) and scoring answers 503 until a later attempt loads it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from risk_rules.errors import TravelriskError
from risk_rules.reference import ReferenceSnapshot
from service.db import session_scope
from service.model.models import ModelVersion
from service.problems import ServiceUnavailable
from service.reference.store import ReferenceCache
from service.settings import Settings

if TYPE_CHECKING:
    from models.assess import Assessor

log = logging.getLogger("travelrisk.model")


class ScoringEngine:
    """Holds the `Assessor` and reference snapshot of one worker process, loading them on demand."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self._assessor: Assessor | None = None
        self._references = ReferenceCache()
        self._registered = False
        self.failure: str | None = "not loaded yet"

    def load(self) -> bool:
        """Try to load the model, rules and reference data; True when they are loaded."""
        if self._assessor is not None:
            return True
        with self._lock:
            if self._assessor is not None:
                return True
            from models.assess import Assessor

            try:
                assessor = Assessor.load(model_directory=self._settings.model_dir)
            except (TravelriskError, OSError) as exc:
                # The reason is ours (a missing or inconsistent artifact), not request data.
                self.failure = f"{type(exc).__name__}: {exc}"
                log.warning("scoring engine not loaded", extra={"reason": self.failure})
                return False
            self._assessor = assessor
            self.failure = None
            log.info(
                "scoring engine loaded",
                extra={
                    "model_version": assessor.model.version,
                    "rules_version": assessor.rules.version,
                },
            )
        self._try_register()
        return True

    def _try_register(self) -> bool:
        if self._registered:
            return True
        assert self._assessor is not None
        try:
            self._register(self._assessor)
        except SQLAlchemyError as exc:
            # Not fatal: the database may be migrated or reachable later; scoring waits until then.
            log.warning("model version not recorded", extra={"error_type": type(exc).__name__})
            return False
        self._registered = True
        return True

    def _register(self, assessor: Assessor) -> None:
        # Assessments refer to the model version that scored them; record it (with its card) once, in a
        # transaction of its own. Another worker may record it at the same moment: that is not an error.
        version = assessor.model.version
        try:
            with session_scope(self._session_factory) as session:
                if session.get(ModelVersion, version) is None:
                    session.add(
                        ModelVersion(version=version, rules_version=assessor.rules.version, card=assessor.model_card())
                    )
        except IntegrityError:
            log.info("model version recorded by another process", extra={"model_version": version})

    def warm_reference(self) -> None:
        """Build the reference snapshot and its indexes now, at start-up, rather than in the first request.

        Not fatal when it fails (the database may not be migrated yet): the first assessment builds it.
        """
        try:
            with self._session_factory() as session:
                self._references.snapshot(session).warm()
        except (SQLAlchemyError, TravelriskError) as exc:
            log.warning("reference data not loaded at start-up", extra={"error_type": type(exc).__name__})

    @property
    def loaded(self) -> bool:
        """Whether the engine is ready to score."""
        return self._assessor is not None

    def assessor(self) -> Assessor:
        """The loaded assessor, loading it now if needed; 503 when it cannot be loaded."""
        if self._assessor is None and not self.load():
            raise ServiceUnavailable("The scoring model is not available; see GET /readyz.", kind="scoring-unavailable")
        if not self._try_register():
            raise ServiceUnavailable("The database is not available; see GET /readyz.", kind="database-unavailable")
        assert self._assessor is not None
        return self._assessor

    def reference(self, session: Session) -> ReferenceSnapshot:
        """The reference data as currently recorded in the database (rebuilt only after a change)."""
        return self._references.snapshot(session)


async def get_scoring_engine(request: Request) -> ScoringEngine:
    """FastAPI dependency: the worker's scoring engine."""
    return request.app.state.scoring
