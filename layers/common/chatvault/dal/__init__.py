"""Data access: the only package that knows PynamoDB, boto3 and the key layout.

A conditional write that is refused is an answer, never an error: the storage module learns it one way
(aws/retry.py `written` for one item, aws/transaction.py `Transaction.committed` for a transaction) and
answers it falsy (False; None where a write answers with the record it wrote), and the use case reads the
session when it needs to tell why and raises the client's error; only where the write itself learns why
(an append, a reply's guard, a Stop) does it answer a named outcome. Whose and whether live is
`Principal.may_use_live`, for the logic and for the refused paths alike. The dal raises only what no use
case could answer otherwise: a fault (StorageUnavailableError), the client's rate limit refused in the
same write (RateLimitedError), a cursor that is not one of ours (InvalidCursorError) and a bearer token
its issuer's keys refuse (UnauthenticatedError). tests/unit/test_layers.py holds the dal to that list."""
