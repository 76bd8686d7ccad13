"""Data access: the only package that knows PynamoDB, boto3 and the key layout.

A conditional write that is refused is an answer, never an error: the storage module learns it one
way (aws/retry.py `written` for one item, aws/transaction.py `Transaction.committed` for a
transaction) and answers False, None, or a named outcome when the write itself knows why (an append,
a reply's guard, a Stop); the use case reads the session when it needs to tell why, and raises the
client's error. The dal raises only what no use case could answer otherwise: a fault
(StorageUnavailableError), the client's rate limit refused in the same write (RateLimitedError), a
cursor that is not one of ours (InvalidCursorError) and a bearer token its issuer's keys refuse
(UnauthenticatedError). tests/unit/test_layers.py holds the dal to that list."""
