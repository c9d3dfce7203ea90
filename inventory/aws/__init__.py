"""AWS plumbing and per-service fetchers (boto3 and the standard library only)."""
