"""Data access: the only package that knows PynamoDB, boto3 and the key layout."""
