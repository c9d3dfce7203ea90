"""Cloudsplaining, Parliament and policy_sentry, imported once with the process's logging kept.

On import Cloudsplaining adds its own stderr handler and sets its and policy_sentry's logger
levels; the service's logging (JSON, masking) is configured in one place, so that is undone.
Parliament imports pkg_resources, which appends setuptools' vendored packages (and the working
directory) to ``sys.path``: those would then be found as installed distributions, so the path
is put back too.
"""

from __future__ import annotations

import logging
import sys
import warnings
from functools import lru_cache

LOGGERS = ("", "cloudsplaining", "policy_sentry", "parliament")


@lru_cache(maxsize=1)
def load() -> None:
    """Import the libraries (about 2 s: policy_sentry's catalogue), leaving logging, warning
    filters and ``sys.path`` as they were."""
    loggers = [logging.getLogger(name) for name in LOGGERS]
    saved = [(lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers]
    path = list(sys.path)
    try:
        with warnings.catch_warnings():
            # Parliament imports pkg_resources (setuptools<81 is pinned for it): the warning
            # would reach every worker's stderr, and nothing in this service can act on it.
            warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
            import cloudsplaining.scan.policy_document  # noqa: F401
            import cloudsplaining.shared.exclusions  # noqa: F401
            import parliament  # noqa: F401
            import policy_sentry.shared.iam_data  # noqa: F401
    finally:
        sys.path[:] = path
        for logger, (level, handlers, propagate, disabled) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.disabled = disabled
