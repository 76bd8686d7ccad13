"""The contract's field bounds, in one place: the request models declare them, and the settings derive
from them the body-size limit that lets the largest valid request through (http/body.py refuses the
rest cheaply). Storage is sized from them too: tests/integration/test_worst_case.py stores the largest
message every allowed setting admits."""

from __future__ import annotations

TITLE_CHARS = 200
FEEDBACK_COMMENT_CHARS = 1000
# The longest RetentionHours a deployment may set (ten years); a conversation's own retention_hours
# is at most its deployment's, checked against the setting
RETENTION_HOURS_MAX = 24 * 365 * 10
# S3's largest single PUT or POST: the most a deployment's MaxUploadBytes may allow
UPLOAD_BYTES_MAX = 5 * 1024**3
METADATA_PAIRS = 16
METADATA_KEY_CHARS = 64
METADATA_VALUE_CHARS = 512
TOOL_NAMES = 64
TOOL_NAME_CHARS = 128
MODEL_CHARS = 128
ERROR_MESSAGE_CHARS = 2048
# A canonical id (session, message, upload): a lowercase UUID, unanchored so that keys can embed it
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# An id as a request may spell it (either case; the models lower it to the canonical form), and a
# client-chosen session id, which must be a version 4 UUID. Anchored, as a JSON Schema pattern is.
UUID_TEXT_PATTERN = "^" + UUID_PATTERN.replace("a-f", "a-fA-F") + "$"
UUID4_TEXT_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
# type/subtype, no parameters (the presigned POST pins it exactly)
CONTENT_TYPE_PATTERN = r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$"

# Characters of text a message's metadata can hold at most (tools, model, error, attributes).
MESSAGE_METADATA_CHARS = (
    TOOL_NAMES * TOOL_NAME_CHARS
    + MODEL_CHARS
    + ERROR_MESSAGE_CHARS
    + METADATA_PAIRS * (METADATA_KEY_CHARS + METADATA_VALUE_CHARS)
)
# The longest JSON spelling of one character: an astral character as two `\uXXXX` escapes.
JSON_BYTES_PER_CHAR = 12
# Field names, punctuation, ids and numbers of the largest body, with room to spare (not whitespace
# padding: a body padded past the limit is 413).
JSON_STRUCTURE_BYTES = 64 * 1024
