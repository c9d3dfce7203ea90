"""inventory: a Celery-based cache of AWS inventory in Redis, DynamoDB and S3."""

__version__ = "0.1.0"
