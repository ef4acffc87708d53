"""Every kind of dated record the service keeps, in the order the API lists them."""

from __future__ import annotations

from service.dated_records import employer_disputes, situations
from service.dated_records.declaration import DatedRecordKind

SITUATIONS: DatedRecordKind = situations.KIND
EMPLOYER_DISPUTES: DatedRecordKind = employer_disputes.KIND
KINDS: tuple[DatedRecordKind, ...] = (SITUATIONS, EMPLOYER_DISPUTES)
