"""AwsSessions with a Stubber-ed STS and a controlled clock; and which errors are retryable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from inventory.aws.errors import is_retryable
from inventory.aws.session import AwsSessions, ClientOptions

ACCOUNT = "111111111111"
OTHER_ACCOUNT = "222222222222"
REGION = "us-east-1"
FIRST_EXPIRY = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
SECOND_EXPIRY = datetime(2025, 1, 1, 13, 0, 0, tzinfo=UTC)
START = FIRST_EXPIRY.timestamp() - 3600  # credentials were just issued for one hour
MARGIN = 300
FIRST_KEY = "ASIAFIRSTEXAMPLE0001"
SECOND_KEY = "ASIASECONDEXAMPLE02"
OTHER_KEY = "ASIAOTHEREXAMPLE0003"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StubbedSessions(AwsSessions):
    """AwsSessions whose STS client is a real botocore client behind a Stubber.

    Every other client is a real client (never called); each creation is recorded with the
    access key and token of the session it was built from.
    """

    def __init__(self, **kwargs: Any) -> None:
        base = boto3.Session(
            aws_access_key_id="HUBKEY",
            aws_secret_access_key="hub-secret",
            region_name=REGION,
        )
        kwargs.setdefault("role_name", "InventoryReadOnly")
        kwargs.setdefault("margin_seconds", MARGIN)
        super().__init__(ClientOptions(), base_session=base, **kwargs)
        self.sts = base.client("sts", region_name=REGION)
        self.stubber = Stubber(self.sts)
        self.stubber.activate()
        self.created: list[tuple[str, str, str, str | None]] = []

    def _new_client(self, session: boto3.Session, service: str, region: str) -> Any:
        if service == "sts":
            self.created.append(("sts", region, "HUBKEY", None))
            return self.sts
        client = super()._new_client(session, service, region)
        creds = session.get_credentials()
        self.created.append((service, region, creds.access_key, creds.token))
        return client

    def expect_assume_role(
        self,
        role_arn: str,
        key: str,
        expiration: datetime,
        external_id: str | None = None,
        duration: int = 3600,
    ) -> None:
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": duration,
        }
        if external_id is not None:
            params["ExternalId"] = external_id
        account, role = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
        self.stubber.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": key,
                    "SecretAccessKey": f"secret-of-{key}",
                    "SessionToken": f"token-of-{key}",
                    "Expiration": expiration,
                },
                "AssumedRoleUser": {
                    "AssumedRoleId": f"AROAEXAMPLEROLEID001:{self.session_name}",
                    "Arn": f"arn:aws:sts::{account}:assumed-role/{role}/{self.session_name}",
                },
            },
            params,
        )


def test_client_assumes_role_arn_built_from_account_and_role_name() -> None:
    sessions = StubbedSessions(clock=Clock(START))
    sessions.expect_assume_role(
        "arn:aws:iam::111111111111:role/InventoryReadOnly", FIRST_KEY, FIRST_EXPIRY
    )

    sessions.client("iam", ACCOUNT, REGION)

    sessions.stubber.assert_no_pending_responses()
    assert sessions.assume_role_calls == 1
    assert sessions.created == [
        ("sts", REGION, "HUBKEY", None),
        ("iam", REGION, FIRST_KEY, f"token-of-{FIRST_KEY}"),
    ]


def test_second_client_call_within_validity_reuses_cached_client() -> None:
    clock = Clock(START)
    sessions = StubbedSessions(clock=clock)
    sessions.expect_assume_role(
        "arn:aws:iam::111111111111:role/InventoryReadOnly", FIRST_KEY, FIRST_EXPIRY
    )
    first = sessions.client("iam", ACCOUNT, REGION)

    clock.now = FIRST_EXPIRY.timestamp() - MARGIN - 1  # last second before the margin
    second = sessions.client("iam", ACCOUNT, REGION)

    assert second is first
    assert sessions.assume_role_calls == 1
    sessions.stubber.assert_no_pending_responses()


def test_other_service_or_region_reuses_credentials_with_new_client() -> None:
    sessions = StubbedSessions(clock=Clock(START))
    sessions.expect_assume_role(
        "arn:aws:iam::111111111111:role/InventoryReadOnly", FIRST_KEY, FIRST_EXPIRY
    )

    iam = sessions.client("iam", ACCOUNT, REGION)
    s3 = sessions.client("s3", ACCOUNT, "us-west-2")

    assert s3 is not iam
    assert sessions.assume_role_calls == 1
    assert sessions.created == [
        ("sts", REGION, "HUBKEY", None),
        ("iam", REGION, FIRST_KEY, f"token-of-{FIRST_KEY}"),
        ("s3", "us-west-2", FIRST_KEY, f"token-of-{FIRST_KEY}"),
    ]


def test_credentials_are_refreshed_once_clock_reaches_expiry_minus_margin() -> None:
    clock = Clock(START)
    sessions = StubbedSessions(clock=clock)
    role_arn = "arn:aws:iam::111111111111:role/InventoryReadOnly"
    sessions.expect_assume_role(role_arn, FIRST_KEY, FIRST_EXPIRY)
    sessions.expect_assume_role(role_arn, SECOND_KEY, SECOND_EXPIRY)
    first = sessions.client("iam", ACCOUNT, REGION)

    clock.now = FIRST_EXPIRY.timestamp() - MARGIN
    second = sessions.client("iam", ACCOUNT, REGION)
    clock.now += 60
    third = sessions.client("iam", ACCOUNT, REGION)

    assert second is not first
    assert third is second
    assert sessions.assume_role_calls == 2
    sessions.stubber.assert_no_pending_responses()
    assert sessions.created == [
        ("sts", REGION, "HUBKEY", None),
        ("iam", REGION, FIRST_KEY, f"token-of-{FIRST_KEY}"),
        ("sts", REGION, "HUBKEY", None),
        ("iam", REGION, SECOND_KEY, f"token-of-{SECOND_KEY}"),
    ]


def test_external_id_and_duration_are_sent_when_configured() -> None:
    sessions = StubbedSessions(
        clock=Clock(START), external_id="ext-1234", duration_seconds=900, session_name="audit"
    )
    sessions.expect_assume_role(
        "arn:aws:iam::111111111111:role/InventoryReadOnly",
        FIRST_KEY,
        FIRST_EXPIRY,
        external_id="ext-1234",
        duration=900,
    )

    sessions.client("iam", ACCOUNT, REGION)

    sessions.stubber.assert_no_pending_responses()
    assert sessions.assume_role_calls == 1


def test_assume_role_disabled_returns_hub_client_without_calling_sts() -> None:
    sessions = StubbedSessions(clock=Clock(START), assume_role=False)

    first = sessions.client("iam", ACCOUNT, REGION)
    second = sessions.client("iam", OTHER_ACCOUNT, REGION)

    assert first is second
    assert first is sessions.hub_client("iam", REGION)
    assert sessions.assume_role_calls == 0
    assert sessions.created == [("iam", REGION, "HUBKEY", None)]


def test_per_account_role_name_override_is_used_in_role_arn() -> None:
    sessions = StubbedSessions(clock=Clock(START))
    sessions.expect_assume_role(
        "arn:aws:iam::222222222222:role/custom/Auditor", OTHER_KEY, FIRST_EXPIRY
    )
    sessions.expect_assume_role(
        "arn:aws:iam::111111111111:role/InventoryReadOnly", FIRST_KEY, FIRST_EXPIRY
    )

    override = sessions.client("iam", OTHER_ACCOUNT, REGION, role_name="custom/Auditor")
    default = sessions.client("iam", ACCOUNT, REGION)

    assert override is not default
    assert sessions.role_arn(OTHER_ACCOUNT, "custom/Auditor") == (
        "arn:aws:iam::222222222222:role/custom/Auditor"
    )
    assert sessions.role_arn(ACCOUNT) == "arn:aws:iam::111111111111:role/InventoryReadOnly"
    assert sessions.assume_role_calls == 2
    sessions.stubber.assert_no_pending_responses()
    assert sessions.created == [
        ("sts", REGION, "HUBKEY", None),
        ("iam", REGION, OTHER_KEY, f"token-of-{OTHER_KEY}"),
        ("sts", REGION, "HUBKEY", None),
        ("iam", REGION, FIRST_KEY, f"token-of-{FIRST_KEY}"),
    ]


def test_failed_assume_role_raises_and_caches_nothing() -> None:
    sessions = StubbedSessions(clock=Clock(START))
    sessions.stubber.add_client_error(
        "assume_role", service_error_code="AccessDenied", http_status_code=403
    )
    sessions.expect_assume_role(
        "arn:aws:iam::111111111111:role/InventoryReadOnly", FIRST_KEY, FIRST_EXPIRY
    )

    with pytest.raises(ClientError) as exc:
        sessions.client("iam", ACCOUNT, REGION)
    sessions.client("iam", ACCOUNT, REGION)

    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert sessions.assume_role_calls == 1
    sessions.stubber.assert_no_pending_responses()


# --- is_retryable ---------------------------------------------------------------------------


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetAccountAuthorizationDetails")


class PutError(Exception):
    """Shaped like PynamoDB's errors: the botocore error is kept in ``cause``."""

    def __init__(self, msg: str, cause: BaseException | None = None) -> None:
        super().__init__(msg)
        self.cause = cause


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("Throttling"), True),
        (client_error("ThrottlingException"), True),
        (client_error("ProvisionedThroughputExceededException"), True),
        (client_error("InternalError"), True),
        (client_error("AccessDenied"), False),
        (client_error("AccessDeniedException"), False),
        (client_error("NoSuchEntity"), False),
        (EndpointConnectionError(endpoint_url="https://iam.amazonaws.com/"), True),
        (ReadTimeoutError(endpoint_url="https://iam.amazonaws.com/"), True),
        (PutError("Failed to put item", cause=client_error("Throttling")), True),
        (PutError("Failed to put item", cause=client_error("AccessDenied")), False),
        (PutError("Failed to put item"), False),
        (ValueError("bad"), False),
    ],
    ids=[
        "throttling",
        "throttling-exception",
        "provisioned-throughput",
        "internal-error",
        "access-denied",
        "access-denied-exception",
        "no-such-entity",
        "endpoint-connection",
        "read-timeout",
        "put-error-caused-by-throttling",
        "put-error-caused-by-access-denied",
        "put-error-without-cause",
        "value-error",
    ],
)
def test_is_retryable_for_throttling_transient_and_network_errors_only(
    exc: BaseException, expected: bool
) -> None:
    assert is_retryable(exc) is expected


def test_error_raised_from_throttling_error_is_retryable() -> None:
    try:
        try:
            raise client_error("Throttling")
        except ClientError as inner:
            raise RuntimeError("listing failed") from inner
    except RuntimeError as exc:
        assert is_retryable(exc) is True


def test_access_denied_raised_while_handling_throttling_is_not_retryable() -> None:
    try:
        try:
            raise client_error("Throttling")
        except ClientError:
            raise client_error("AccessDenied")  # noqa: B904 - implicit chaining is the point
    except ClientError as exc:
        assert is_retryable(exc) is False
