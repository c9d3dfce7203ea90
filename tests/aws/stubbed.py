"""Stubber helpers: clients that never reach AWS, exact call sequences, CloudTrail events."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.stub import Stubber

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
# A session of our own: boto3.client() would create (and keep) the process-wide default one.
SESSION = boto3.session.Session(
    aws_access_key_id="AKIAEXAMPLEEXAMPLE01",
    aws_secret_access_key="example-secret",
    region_name="us-east-1",
)
# One attempt: an error answer must reach the code under test, not be retried into the next stub.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def client(service: str, region: str = "us-east-1") -> Any:
    """A real botocore client of the service; every call it makes must be stubbed."""
    return SESSION.client(service, region_name=region, config=NO_RETRIES)


@dataclass(frozen=True)
class Call:
    """One API call expected, with exactly these parameters, and what AWS answers."""

    operation: str
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)
    #: An AWS error code answered instead of the response.
    error: str | None = None
    status: int = 400


def error(operation: str, params: dict[str, Any], code: str, status: int = 400) -> Call:
    return Call(operation, params, error=code, status=status)


def run(client: Any, calls: Sequence[Call], action: Callable[[], Any]) -> Any:
    """``action()`` with the client answering exactly ``calls``, in order, and nothing else."""
    with Stubber(client) as stubber:
        for call in calls:
            if call.error is None:
                # A copy: botocore's handlers edit a response in place (IAM documents decoded).
                stubber.add_response(call.operation, copy.deepcopy(call.response), call.params)
            else:
                stubber.add_client_error(
                    call.operation,
                    service_error_code=call.error,
                    service_message=f"{call.error} (stubbed)",
                    http_status_code=call.status,
                    expected_params=call.params,
                )
        result = action()
        stubber.assert_no_pending_responses()
    return result


# --- CloudTrail events (EventBridge "AWS API Call via CloudTrail") -----------------------------

EVENT_TIME = "2024-05-14T10:21:09Z"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/Admin"
ALICE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice@example.com"
#: The actor ResourceEvent names for ASSUMED_ROLE: the session, and the role it is of.
ALICE = f"{ALICE_SESSION} (role {ADMIN_ROLE})"
ASSUMED_ROLE = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLEADMIN0001:alice@example.com",
    "arn": ALICE_SESSION,
    "accountId": ACCOUNT,
    "accessKeyId": "ASIAEXAMPLEEXAMPLE01",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLEADMIN0001",
            "arn": ADMIN_ROLE,
            "accountId": ACCOUNT,
            "userName": "Admin",
        },
        "webIdFederationData": {},
        "attributes": {"creationDate": "2024-05-14T09:58:41Z", "mfaAuthenticated": "true"},
    },
}


def event_time() -> float:
    return datetime.fromisoformat(EVENT_TIME.replace("Z", "+00:00")).timestamp()


def event_id(name: str) -> str:
    """A distinct, stable CloudTrail eventID per event name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloudtrail:{name}"))


def api_call(
    source: str,
    name: str,
    params: dict[str, Any] | None,
    response: dict[str, Any] | None = None,
    *,
    region: str = "us-east-1",
    account: str = ACCOUNT,
    identity: dict[str, Any] | None = None,
    failure: tuple[str, str] | None = None,
) -> str:
    """The SQS message body of one CloudTrail management event, as EventBridge forwards it."""
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": ASSUMED_ROLE if identity is None else identity,
        "eventTime": EVENT_TIME,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.24",
        "userAgent": "aws-cli/2.15.40 md/command#" + name,
        "requestParameters": params,
        "responseElements": response,
        "requestID": "3f1f0a4c-5b8e-4d1f-9a51-0c2c4e1b7d11",
        "eventID": event_id(name),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": source,
        },
    }
    if failure is not None:
        detail["errorCode"], detail["errorMessage"] = failure
    return json.dumps(
        {
            "version": "0",
            "id": "b7e8a4b2-0f8e-7c5e-3a1d-5c9b2e6f4a10",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + source.removesuffix(".amazonaws.com"),
            "account": account,
            "time": EVENT_TIME,
            "region": region,
            "resources": [],
            "detail": detail,
        }
    )


# --- answers on the wire (for what the Stubber cannot say, such as a null in the XML) ----------


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs: Any) -> Any:
        yield self.data


def on_the_wire(client: Any, answers: Sequence[tuple[str, int, str]]) -> list[str]:
    """Answer the client's requests with raw ``(operation, status, body)``; the operations sent."""
    # Below the Stubber: botocore's own parsers and handlers run on what the service would send.
    pending = list(answers)
    sent: list[str] = []

    def answer(request: Any, event_name: str, **kwargs: Any) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        sent.append(operation)
        expected, status, body = pending.pop(0)
        assert operation == expected, f"{operation} sent where {expected} was expected"
        return AWSResponse(
            request.url, status, {"Content-Type": "application/xml"}, _Body(body.encode())
        )

    client.meta.events.register("before-send", answer)
    return sent
