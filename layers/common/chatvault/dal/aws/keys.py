"""The single-table key layout (docs/DESIGN.md, "Data model").

One partition per session, `pk = <session_id>`, items ordered by `sk`:

    !H#<share_id>       a share link: a snapshot's bound, not a copy (outside the list range)
    !I#<message_id>     idempotency marker of a client message id   (outside the list range)
    !P                  the profile: title and metadata              (outside the list range)
    #S                  the session: owner, state, counters (small)  (low end: first in ascending pages)
    M#<position>        a message, position = fixed-width order key  (the history)
    U#<upload_id>       an upload's declaration and state            (above the history)

so one Query reads "the session and the first ascending page", other pages read the session
concurrently, one append writes the small session item and the message, and one Query on `pk`
finds everything a delete must erase.
"""

from __future__ import annotations

SESSION_SK = "#S"
PROFILE_SK = "!P"
MESSAGE_PREFIX = "M#"
MESSAGE_ID_PREFIX = "!I#"
SHARE_PREFIX = "!H#"
UPLOAD_PREFIX = "U#"  # sorts above every message (`M#~` ends the history range)
# the upper bounds of the history and upload ranges: "~" sorts above every digit and id character
LAST_MESSAGE = MESSAGE_PREFIX + "~"
LAST_UPLOAD = UPLOAD_PREFIX + "~"

OWNER_INDEX = "by_owner"
ERASING_INDEX = "by_erasing"  # sparse: session items marked for erasure, for the sweep to finish
SHARE_INDEX = "by_share"  # sparse: share links by their id (keys only), for the public read
ERASING = "pending"
