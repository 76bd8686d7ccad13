"""PUT and DELETE /sessions/{id}/messages/{message_id}/feedback: a person's rating of a reply ("up" or
"down", with an optional comment), replaced by the next PUT, removed by DELETE; on assistant messages
only (other roles: 422). The answer is the message as it now stands.

The session's item is read (who owns it, its state) with its key sent beside it; the message is found
by id (dal/feedback.py) and written in place, sealed like its content. Operators see counts of "up"
and "down" per model as metrics (FeedbackUp, FeedbackDown, dimension `model`): never the comment,
which is content (it goes where the message goes: the history, the export, the erase)."""

from __future__ import annotations

from datetime import timedelta

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chatvault.core import clock
from chatvault.core.errors import (
    MessageNotFoundError,
    SessionEndedError,
    SessionNotFoundError,
    ValidationFailedError,
)
from chatvault.core.settings import get_settings
from chatvault.dal import conversation_keys, feedback, sessions
from chatvault.logic.rules.access import (
    Caller,
    authorize_live,
    is_canonical_id,
    principal_of,
    session_id_from_path,
)
from chatvault.logic.rules.limits import charge_session_hourly
from chatvault.models.api import FeedbackRequest, MessageOut
from chatvault.models.domain import Feedback, MessageRecord

# The model's name as a metric dimension: at most this long (a bot's service writer names the model
# of the replies it stores; a dimension's value is bounded, and so is the metrics' cardinality)
MODEL_DIMENSION_CHARS = 64


def set_feedback(
    raw_session_id: str, raw_message_id: str, request: FeedbackRequest, caller: Caller
) -> MessageOut:
    given = Feedback(rating=request.rating, comment=request.comment or None, updated_at=clock.now())
    message = _write(raw_session_id, raw_message_id, given, caller)
    with single_metric(
        name="FeedbackUp" if given.rating == "up" else "FeedbackDown", unit=MetricUnit.Count, value=1
    ) as metric:
        metric.add_dimension(name="model", value=model_of(message))
    return MessageOut.of(message)


def clear_feedback(raw_session_id: str, raw_message_id: str, caller: Caller) -> MessageOut:
    return MessageOut.of(_write(raw_session_id, raw_message_id, None, caller))


def model_of(message: MessageRecord) -> str:
    """The model that wrote the reply (its metadata's `model`), or "unknown"."""
    model = str(message.metadata.get("model") or "unknown")
    return model[:MODEL_DIMENSION_CHARS]


def _write(raw_session_id: str, raw_message_id: str, given: Feedback | None, caller: Caller) -> MessageRecord:
    settings = get_settings()
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    message_id = raw_message_id.strip().lower()
    at = clock.now()
    key_soon = conversation_keys.KeySoon(session_id, at)
    try:
        record = authorize_live(sessions.state(session_id), principal, at)
        key = key_soon.named(record.key_id)
    except conversation_keys.KeyGone as gone:
        raise SessionNotFoundError() from gone
    finally:
        key_soon.settle()
    if record.status == "ended":
        raise SessionEndedError()
    charge_session_hourly("feedback", session_id, at, settings.feedback_limit_per_hour, "gave feedback")
    deployment = timedelta(seconds=settings.retention_seconds)
    found = feedback.find(session_id, message_id, key) if is_canonical_id(message_id) else None
    if found is None or not record.keeps(found.created_at, found.expires_at, at, deployment):
        raise MessageNotFoundError()
    if found.role != "assistant":
        raise ValidationFailedError("path.message_id", "feedback is given on assistant messages only")
    if not feedback.write(found, given, key):
        raise MessageNotFoundError()  # erased or expired since it was found
    return found.model_copy(update={"feedback": given})
