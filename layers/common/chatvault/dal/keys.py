"""The single-table key layout (README, "Data model").

One partition per session, `pk = <session_id>`, items ordered by `sk`:

    !I#<message_id>     idempotency marker of a client message id   (outside both list ranges)
    #S                  the session item                             (low end: first in ascending pages)
    M#<position>        a message, position = fixed-width order key  (the history)
    ~G                  the guard: auth + deletion state             (high end: first in descending pages)

so one Query reads "the session and a page of its messages" in either order, and one
Query on `pk` finds everything a delete must erase.
"""

from __future__ import annotations

SESSION_SK = "#S"
GUARD_SK = "~G"
MESSAGE_PREFIX = "M#"
MESSAGE_ID_PREFIX = "!I#"

OWNER_INDEX = "by_owner"
ERASING_INDEX = "by_erasing"  # sparse: session items marked for erasure, for the sweep to finish
ERASING = "pending"
