"""Which errors are worth retrying: throttling and transient faults, never AccessDenied."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "AuthorizationError",  # SNS's
    }
)
_NETWORK = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (PynamoDB keeps the botocore error in ``cause``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        # Explicit causes only: an error raised while handling a throttle is not a throttle.
        current = getattr(current, "cause", None) or current.__cause__
    return chain


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx-style AWS errors, and network faults reaching AWS."""
    causes = _causes(exc)
    if any(error_code(c) in ACCESS_DENIED_CODES for c in causes):
        return False
    for cause in causes:
        code = error_code(cause)
        if code in THROTTLING_CODES or code in TRANSIENT_CODES:
            return True
        if isinstance(cause, _NETWORK):
            return True
    return False
