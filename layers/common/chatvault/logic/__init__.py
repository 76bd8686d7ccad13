"""Business rules, one module per use case. No boto3, no PynamoDB, no HTTP here."""
