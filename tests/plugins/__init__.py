"""User-code stand-ins loaded by path from settings (e.g. a CloudTrail source factory)."""
