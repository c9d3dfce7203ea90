"""Request handlers by area; each module exposes ``ROUTES``."""
