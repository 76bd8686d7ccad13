"""chatvault: the shared layer of the conversation-session service.

handler (functions/*/app.py) -> logic (one module per use case) -> dal (PynamoDB, boto3).
"""
