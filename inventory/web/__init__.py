"""The Tornado web tier: reads the Redis cache through readers, never AWS."""
