"""Seed a moto server with a small, deterministic AWS organisation (tests, demo, benchmarks)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

SPOKE_ROLE = "OrganizationAccountAccessRole"  # moto creates it in every member account
MANAGEMENT_ACCOUNT = "123456789012"  # moto's default account becomes the management account


def aws_policy_arn(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust(service: str) -> dict[str, Any]:
    return _doc({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


@dataclass
class RoleSeed:
    name: str
    trust_policy: dict[str, Any]
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)  # customer policy names
    tags: dict[str, str] = field(default_factory=dict)
    boundary: str | None = None  # customer policy name
    aws_policies: list[str] = field(default_factory=list)  # AWS managed policy names
    description: str = ""
    max_session_duration: int | None = None  # seconds; AWS's default is 3,600


@dataclass
class UserSeed:
    name: str
    groups: list[str] = field(default_factory=list)
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class GroupSeed:
    name: str
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)


@dataclass
class BucketSeed:
    name: str
    region: str
    policy: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class QueueSeed:
    name: str
    region: str
    policy: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    dead_letter: str | None = None  # name of another queue in the same region


@dataclass
class TopicSeed:
    name: str
    region: str
    policy: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class KeySeed:
    """A customer managed KMS key and its alias (``alias/<alias>``)."""

    alias: str
    region: str
    description: str = ""
    rotation: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FunctionSeed:
    name: str
    region: str
    role: str  # the execution role's name, in the same account
    runtime: str = "python3.12"
    invoked_by: str | None = None  # a service principal granted lambda:InvokeFunction
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SecretSeed:
    name: str
    region: str
    #: Written to Secrets Manager, never read back: the demo test looks for it everywhere.
    value: str
    kms_alias: str | None = None  # a KeySeed's alias in the same region
    policy: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RepositorySeed:
    name: str
    region: str
    scan_on_push: bool = False
    policy: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class AccountSeed:
    """What one member account holds; ``id`` is filled in once Organizations assigns it."""

    name: str
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: list[RoleSeed] = field(default_factory=list)
    users: list[UserSeed] = field(default_factory=list)
    groups: list[GroupSeed] = field(default_factory=list)
    buckets: list[BucketSeed] = field(default_factory=list)
    queues: list[QueueSeed] = field(default_factory=list)
    topics: list[TopicSeed] = field(default_factory=list)
    keys: list[KeySeed] = field(default_factory=list)
    functions: list[FunctionSeed] = field(default_factory=list)
    secrets: list[SecretSeed] = field(default_factory=list)
    repositories: list[RepositorySeed] = field(default_factory=list)
    id: str = ""

    def queue_arn(self, q: QueueSeed) -> str:
        return f"arn:aws:sqs:{q.region}:{self.id}:{q.name}"

    def topic_arn(self, t: TopicSeed) -> str:
        return f"arn:aws:sns:{t.region}:{self.id}:{t.name}"

    def policy_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.id}:policy/{name}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.id}:role/{name}"

    def resolve(self, document: dict[str, Any]) -> dict[str, Any]:
        """A seed's policy with ``{account}`` replaced by the account's ID."""
        return dict(json.loads(json.dumps(document).replace("{account}", self.id)))


def demo_account(name: str, index: int) -> AccountSeed:
    """A member account whose resources differ by name and index."""
    queue_policy = f"{name}-queue-access"
    account = AccountSeed(
        name=name,
        policies={
            queue_policy: _doc(_allow(["sqs:SendMessage", "sqs:ReceiveMessage"], "*")),
            f"{name}-boundary": _doc(_allow("*", "*")),
        },
    )
    account.roles.append(
        RoleSeed(
            name=f"{name}-app",
            trust_policy=trust("ec2.amazonaws.com"),
            inline={"read-bucket": _doc(_allow("s3:GetObject", f"arn:aws:s3:::{name}-data/*"))},
            attached=[queue_policy],
            tags={"owner": f"team-{name}", "inventory-groups": f"{name}-devs@example.com"},
            boundary=f"{name}-boundary",
            description=f"{name} application role",
            max_session_duration=7200,
            aws_policies=["ReadOnlyAccess"],
        )
    )
    for n in range(index + 1):
        account.roles.append(
            RoleSeed(
                name=f"{name}-worker-{n}",
                trust_policy=trust("lambda.amazonaws.com"),
                inline={f"logs-{n}": _doc(_allow("logs:PutLogEvents", "*"))},
                tags={"tier": str(n)},
            )
        )
    account.groups.append(GroupSeed(name=f"{name}-admins", attached=[queue_policy]))
    account.users.append(
        UserSeed(
            name=f"{name}-alice",
            groups=[f"{name}-admins"],
            inline={"self": _doc(_allow("iam:GetUser", "*"))},
            tags={"email": f"alice@{name}.example.com"},
        )
    )
    account.buckets += [
        BucketSeed(
            f"{name}-data-{index}",
            "us-east-1",
            policy=_doc(
                {
                    "Sid": "DenyInsecure",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": f"arn:aws:s3:::{name}-data-{index}/*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ),
            tags={"owner": f"team-{name}"},
        ),
        BucketSeed(f"{name}-logs-{index}", "us-west-2"),
    ]
    for region in REGIONS:
        account.queues += [
            QueueSeed(f"{name}-jobs-dlq", region),
            QueueSeed(
                f"{name}-jobs",
                region,
                policy=_doc(
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": "*",
                    }
                ),
                tags={"service": "jobs"},
                dead_letter=f"{name}-jobs-dlq",
            ),
        ]
        account.topics.append(TopicSeed(f"{name}-events", region, tags={"service": "events"}))
    _add_policy_kinds(account, name)
    return account


def _add_policy_kinds(account: AccountSeed, name: str) -> None:
    """One KMS key, Lambda function, secret and ECR repository, each with its own policy."""
    app_role = f"arn:aws:iam::{{account}}:role/{name}-app"  # the account ID is filled in later
    region = "us-east-1"
    account.keys.append(
        KeySeed(f"{name}-data", region, f"{name} data key", rotation=True, tags={"owner": name})
    )
    account.functions.append(
        FunctionSeed(
            f"{name}-thumbnails",
            region,
            role=f"{name}-worker-0",
            invoked_by="events.amazonaws.com",
            tags={"service": "thumbnails"},
        )
    )
    read_by_app = {
        "Effect": "Allow",
        "Principal": {"AWS": app_role},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    }
    account.secrets.append(
        SecretSeed(
            f"{name}/db-password",
            region,
            value=f"demo-secret-value-of-{name}-never-cached",
            kms_alias=f"{name}-data",
            policy=_doc(read_by_app),
            tags={"service": "db"},
        )
    )
    pull_by_app = {
        "Sid": "AppPulls",
        "Effect": "Allow",
        "Principal": {"AWS": app_role},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }
    account.repositories.append(
        RepositorySeed(
            f"{name}/app", region, scan_on_push=True, policy=_doc(pull_by_app), tags={"app": name}
        )
    )


REGIONS = ("us-east-1", "us-west-2")


class Seeder:
    """Creates an organisation and fills member accounts through assumed roles."""

    def __init__(self, endpoint_url: str, region: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.hub = boto3.Session(region_name=region)
        self._sessions: dict[str, boto3.Session] = {}

    def client(self, service: str, account_id: str | None = None, region: str | None = None) -> Any:
        session = self.hub if account_id is None else self._sessions.get(account_id)
        if session is None and account_id is not None:
            sts = self.hub.client("sts", endpoint_url=self.endpoint_url)
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/{SPOKE_ROLE}",
                RoleSessionName="seed",
            )["Credentials"]
            session = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=self.region,
            )
            self._sessions[account_id] = session
        assert session is not None
        return session.client(
            service, endpoint_url=self.endpoint_url, region_name=region or self.region
        )

    def organisation(self) -> str:
        org = self.client("organizations")
        try:
            return str(org.create_organization(FeatureSet="ALL")["Organization"]["Id"])
        except org.exceptions.AlreadyInOrganizationException:
            return str(org.describe_organization()["Organization"]["Id"])

    def create_account(self, seed: AccountSeed) -> AccountSeed:
        org = self.client("organizations")
        status = org.create_account(AccountName=seed.name, Email=f"{seed.name}@example.com")
        seed.id = status["CreateAccountStatus"]["AccountId"]
        self.fill(seed)
        return seed

    def fill(self, seed: AccountSeed) -> None:
        self.fill_iam(seed)
        self.fill_resources(seed)
        self.fill_config(seed)

    def fill_config(self, seed: AccountSeed) -> None:
        """An AWS Config recorder of every supported type in each region, as an organisation
        that uses Config has (the management account has none: Config is not enabled there)."""
        for region in REGIONS:
            config = self.client("config", seed.id, region)
            config.put_configuration_recorder(
                ConfigurationRecorder={
                    "name": "default",
                    "roleARN": f"arn:aws:iam::{seed.id}:role/aws-service-role/"
                    "config.amazonaws.com/AWSServiceRoleForConfig",
                    "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
                }
            )

    def fill_resources(self, seed: AccountSeed) -> None:
        for bucket in seed.buckets:
            self._bucket(seed, bucket)
        for queue in seed.queues:
            self._queue(seed, queue)
        for topic in seed.topics:
            self._topic(seed, topic)
        for key in seed.keys:
            self._key(seed, key)
        for function in seed.functions:
            self._function(seed, function)
        for secret in seed.secrets:
            self._secret(seed, secret)
        for repository in seed.repositories:
            self._repository(seed, repository)

    def _bucket(self, seed: AccountSeed, bucket: BucketSeed) -> None:
        s3 = self.client("s3", seed.id, bucket.region)
        params: dict[str, Any] = {"Bucket": bucket.name}
        if bucket.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": bucket.region}
        s3.create_bucket(**params)
        if bucket.policy:
            s3.put_bucket_policy(Bucket=bucket.name, Policy=json.dumps(bucket.policy))
        if bucket.tags:
            s3.put_bucket_tagging(
                Bucket=bucket.name,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in bucket.tags.items()]},
            )

    def _queue(self, seed: AccountSeed, queue: QueueSeed) -> None:
        sqs = self.client("sqs", seed.id, queue.region)
        attributes: dict[str, str] = {}
        if queue.policy:
            attributes["Policy"] = json.dumps(queue.policy)
        if queue.dead_letter:
            dlq = f"arn:aws:sqs:{queue.region}:{seed.id}:{queue.dead_letter}"
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq, "maxReceiveCount": 5}
            )
        sqs.create_queue(QueueName=queue.name, Attributes=attributes, tags=queue.tags)

    def _topic(self, seed: AccountSeed, topic: TopicSeed) -> None:
        sns = self.client("sns", seed.id, topic.region)
        arn = sns.create_topic(
            Name=topic.name, Tags=[{"Key": k, "Value": v} for k, v in topic.tags.items()]
        )["TopicArn"]
        if topic.policy:
            sns.set_topic_attributes(
                TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(topic.policy)
            )

    def _key(self, seed: AccountSeed, key: KeySeed) -> None:
        kms = self.client("kms", seed.id, key.region)
        tags = [{"TagKey": k, "TagValue": v} for k, v in key.tags.items()]
        key_id = kms.create_key(Description=key.description, Tags=tags)["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/{key.alias}", TargetKeyId=key_id)
        if key.rotation:
            kms.enable_key_rotation(KeyId=key_id)

    def _function(self, seed: AccountSeed, function: FunctionSeed) -> None:
        import io
        import zipfile

        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return event\n")
        awslambda = self.client("lambda", seed.id, function.region)
        awslambda.create_function(
            FunctionName=function.name,
            Runtime=function.runtime,
            Role=seed.role_arn(function.role),
            Handler="app.handler",
            Code={"ZipFile": code.getvalue()},
            Tags=function.tags,
        )
        if function.invoked_by:
            awslambda.add_permission(
                FunctionName=function.name,
                StatementId="invoke",
                Action="lambda:InvokeFunction",
                Principal=function.invoked_by,
                SourceAccount=seed.id,
            )

    def _secret(self, seed: AccountSeed, secret: SecretSeed) -> None:
        sm = self.client("secretsmanager", seed.id, secret.region)
        params: dict[str, Any] = {
            "Name": secret.name,
            "SecretString": secret.value,
            "Tags": [{"Key": k, "Value": v} for k, v in secret.tags.items()],
        }
        if secret.kms_alias:
            params["KmsKeyId"] = f"alias/{secret.kms_alias}"
        sm.create_secret(**params)
        if secret.policy:
            policy = json.dumps(seed.resolve(secret.policy))
            sm.put_resource_policy(SecretId=secret.name, ResourcePolicy=policy)

    def _repository(self, seed: AccountSeed, repository: RepositorySeed) -> None:
        ecr = self.client("ecr", seed.id, repository.region)
        ecr.create_repository(
            repositoryName=repository.name,
            imageScanningConfiguration={"scanOnPush": repository.scan_on_push},
            tags=[{"Key": k, "Value": v} for k, v in repository.tags.items()],
        )
        if repository.policy:
            policy = json.dumps(seed.resolve(repository.policy))
            ecr.set_repository_policy(repositoryName=repository.name, policyText=policy)

    def fill_iam(self, seed: AccountSeed) -> None:
        iam = self.client("iam", seed.id)
        for name, document in seed.policies.items():
            iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
        for group in seed.groups:
            self._group(iam, seed, group)
        for role in seed.roles:
            self._role(iam, seed, role)
        for user in seed.users:
            self._user(iam, seed, user)

    @staticmethod
    def _group(iam: Any, seed: AccountSeed, group: GroupSeed) -> None:
        iam.create_group(GroupName=group.name)
        for pname, document in group.inline.items():
            iam.put_group_policy(
                GroupName=group.name, PolicyName=pname, PolicyDocument=json.dumps(document)
            )
        for pname in group.attached:
            iam.attach_group_policy(GroupName=group.name, PolicyArn=seed.policy_arn(pname))

    @staticmethod
    def _role(iam: Any, seed: AccountSeed, role: RoleSeed) -> None:
        params: dict[str, Any] = {
            "RoleName": role.name,
            "AssumeRolePolicyDocument": json.dumps(role.trust_policy),
            "Tags": [{"Key": k, "Value": v} for k, v in role.tags.items()],
        }
        if role.description:
            params["Description"] = role.description
        if role.max_session_duration:
            params["MaxSessionDuration"] = role.max_session_duration
        if role.boundary:
            params["PermissionsBoundary"] = seed.policy_arn(role.boundary)
        iam.create_role(**params)
        for pname, document in role.inline.items():
            iam.put_role_policy(
                RoleName=role.name, PolicyName=pname, PolicyDocument=json.dumps(document)
            )
        for pname in role.attached:
            iam.attach_role_policy(RoleName=role.name, PolicyArn=seed.policy_arn(pname))
        for pname in list(role.aws_policies):
            try:
                iam.attach_role_policy(RoleName=role.name, PolicyArn=aws_policy_arn(pname))
            except iam.exceptions.NoSuchEntityException:
                # moto has AWS managed policies only with MOTO_IAM_LOAD_MANAGED_POLICIES=true
                role.aws_policies.remove(pname)

    @staticmethod
    def _user(iam: Any, seed: AccountSeed, user: UserSeed) -> None:
        iam.create_user(
            UserName=user.name, Tags=[{"Key": k, "Value": v} for k, v in user.tags.items()]
        )
        for gname in user.groups:
            iam.add_user_to_group(GroupName=gname, UserName=user.name)
        for pname, document in user.inline.items():
            iam.put_user_policy(
                UserName=user.name, PolicyName=pname, PolicyDocument=json.dumps(document)
            )
        for pname in user.attached:
            iam.attach_user_policy(UserName=user.name, PolicyArn=seed.policy_arn(pname))


def seed_demo_organisation(
    endpoint_url: str, names: list[str] | None = None, region: str = "us-east-1"
) -> list[AccountSeed]:
    """An organisation with member accounts ``dev``, ``staging``, ``prod`` (or ``names``)."""
    seeder = Seeder(endpoint_url, region)
    seeder.organisation()
    return [
        seeder.create_account(demo_account(name, i))
        for i, name in enumerate(names or ["dev", "staging", "prod"])
    ]


def cloudtrail_error_envelopes(seeds: list[AccountSeed], now: float) -> list[dict[str, Any]]:
    """EventBridge envelopes of CloudTrail errors by each account's app role (for the demo)."""
    import datetime as dt

    envelopes = []
    failures = [
        ("AccessDenied", "s3.amazonaws.com", "GetObject", "arn:aws:s3:::{name}-secrets/config"),
        ("AccessDenied", "sqs.amazonaws.com", "SendMessage", "arn:aws:sqs:us-east-1:{id}:audit"),
        ("UnauthorizedOperation", "ec2.amazonaws.com", "RunInstances", None),
    ]
    for index, seed in enumerate(seeds):
        role = seed.role_arn(f"{seed.name}-app")
        for n in range(index + 2):
            code, source, action, resource = failures[n % len(failures)]
            when = dt.datetime.fromtimestamp(now - 60 * (n + 1), dt.UTC)
            detail = {
                "eventID": f"demo-{seed.id}-{n}",
                "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": source,
                "eventName": action,
                "awsRegion": "us-east-1",
                "errorCode": code,
                "errorMessage": f"{role} is not authorized to perform {action}",
                "recipientAccountId": seed.id,
                "userIdentity": {
                    "type": "AssumedRole",
                    "arn": f"arn:aws:sts::{seed.id}:assumed-role/{seed.name}-app/session",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role}},
                },
                "resources": (
                    [{"ARN": resource.format(name=seed.name, id=seed.id)}] if resource else []
                ),
            }
            envelopes.append(
                {
                    "version": "0",
                    "detail-type": "AWS API Call via CloudTrail",
                    "source": "aws." + source.removesuffix(".amazonaws.com"),
                    "account": seed.id,
                    "detail": detail,
                }
            )
    return envelopes


def change_event_envelope(
    account_id: str,
    event_name: str,
    params: dict[str, Any],
    when: float,
    actor: str,
    event_id: str | None = None,
    source: str = "iam.amazonaws.com",
    region: str = "us-east-1",
) -> dict[str, Any]:
    """The EventBridge envelope of one successful CloudTrail write call, as SQS delivers it.

    CloudTrail does not run in moto: the demo, the tests and the benchmark put these on the
    change-events queue after making the change themselves.
    """
    import time as _time
    import uuid

    stamp = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(when))
    stamp += f".{int(when % 1 * 1000):03d}Z"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + source.removesuffix(".amazonaws.com"),
        "account": account_id,
        "time": stamp,
        "region": region,
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": actor},
            "eventTime": stamp,
            "eventSource": source,
            "eventName": event_name,
            "awsRegion": region,
            "requestParameters": params,
            "responseElements": None,
            "eventID": event_id or str(uuid.uuid4()),
            "recipientAccountId": account_id,
        },
    }
