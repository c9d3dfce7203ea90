"""Storage only: Redis, DynamoDB and S3, and the readers the web tier uses."""
