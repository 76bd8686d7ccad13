"""An operator erases a session by its id (a data-subject request reaching the operator rather than
the user's own panic button): the same steps and guarantees as the panic button, for whoever owns
the session, audited as `erased_by_operator` with the reason (one of a fixed set: never free text,
which could carry personal data into the audit table). Used by `make admin` (infra/admin.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from chatvault.core import clock
from chatvault.core.settings import get_settings
from chatvault.dal import erasure
from chatvault.logic.rules.access import session_id_from_path
from chatvault.logic.rules.erase import finish_erase
from chatvault.models.domain import EraseReceipt

Reason = Literal["data_subject_request", "legal_obligation", "abuse"]
OPERATOR = "operator"


def erase_by_operator(raw_session_id: str, reason: Reason) -> EraseReceipt | None:
    """The receipt, or None when no such session exists (nothing to erase)."""
    session_id = session_id_from_path(raw_session_id)
    at = clock.now()
    keep_until = at + timedelta(seconds=get_settings().retention_seconds)
    if not erasure.mark_erasing(session_id, None, at, keep_until):
        return None
    erased = finish_erase(session_id, OPERATOR, event="erased_by_operator", details={"reason": reason})
    return EraseReceipt(
        session_id=session_id,
        deleted_at=erased.deleted_at or at,
        messages=erased.messages,
        uploads=erased.files,
    )
