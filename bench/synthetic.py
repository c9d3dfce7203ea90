"""A deterministic synthetic organisation for the benchmarks, and a fast way to load it into moto.

``organisation_spec`` builds the accounts' contents from a seeded RNG (the same sizes and seed
give the same names, documents and tags). ``seed_into_moto`` creates the organisation and the
member accounts through ``inventory.demo.seed.Seeder`` over HTTP (so the assumable spoke role
exists exactly as in the demo and the tests), then fills every account by calling moto's
backends directly: the benchmarks run in the moto server's own process (``bench/motohost.py``),
and direct calls load 100 x 200 roles in seconds where the HTTP API would take many minutes on
two cores. What the benchmarks then measure goes through the moto server over HTTP.
"""

from __future__ import annotations

import json
import random
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from inventory.demo.seed import (
    AccountSeed,
    BucketSeed,
    GroupSeed,
    QueueSeed,
    RoleSeed,
    Seeder,
    TopicSeed,
    UserSeed,
)

REGIONS = ("us-east-1", "us-west-2")
SERVICES = ["ec2", "lambda", "ecs-tasks", "states", "glue", "sagemaker", "events"]
ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sns:Publish",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "logs:PutLogEvents",
    "kms:Decrypt",
    "ssm:GetParameter",
    "secretsmanager:GetSecretValue",
]
TEAMS = ["api", "billing", "data", "etl", "ml", "ops", "payments", "search", "web"]


@dataclass(frozen=True)
class Sizes:
    """How much every account holds."""

    accounts: int = 1
    roles: int = 200
    policies: int = 20
    users: int = 10
    groups: int = 3
    buckets: int = 0
    queues: int = 0  # per region
    topics: int = 0  # per region
    seed: int = 7

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _statement(rng: random.Random, resource: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": sorted(rng.sample(ACTIONS, rng.randint(1, 4))),
        "Resource": resource,
    }


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _trust(service: str) -> dict[str, Any]:
    return _doc(
        {
            "Effect": "Allow",
            "Principal": {"Service": f"{service}.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )


def account_spec(name: str, sizes: Sizes, rng: random.Random) -> AccountSeed:
    """One account: roles with 2 inline + 2 attached policies and 3 tags, and the rest."""
    policy_names = [f"{name}-policy-{j:04d}" for j in range(sizes.policies)]
    account = AccountSeed(
        name=name,
        policies={
            p: _doc(_statement(rng, "*"), _statement(rng, f"arn:aws:s3:::{p}/*"))
            for p in policy_names
        },
    )
    for i in range(sizes.roles):
        team = rng.choice(TEAMS)
        role = f"{name}-{team}-role-{i:05d}"
        account.roles.append(
            RoleSeed(
                name=role,
                trust_policy=_trust(rng.choice(SERVICES)),
                inline={
                    f"{role}-read": _doc(_statement(rng, "*")),
                    f"{role}-write": _doc(_statement(rng, f"arn:aws:s3:::{team}-{i}/*")),
                },
                attached=rng.sample(policy_names, min(2, len(policy_names))),
                tags={"team": team, "env": rng.choice(["prod", "dev"]), "index": str(i)},
            )
        )
    group_names = [f"{name}-group-{g}" for g in range(sizes.groups)]
    for g in group_names:
        account.groups.append(
            GroupSeed(
                name=g,
                inline={f"{g}-inline": _doc(_statement(rng, "*"))},
                attached=rng.sample(policy_names, min(1, len(policy_names))),
            )
        )
    for u in range(sizes.users):
        account.users.append(
            UserSeed(
                name=f"{name}-user-{u:04d}",
                groups=rng.sample(group_names, min(1, len(group_names))),
                inline={"self": _doc(_statement(rng, "*"))},
                attached=rng.sample(policy_names, min(1, len(policy_names))),
                tags={"team": rng.choice(TEAMS), "email": f"user{u}@{name}.example.com"},
            )
        )
    for b in range(sizes.buckets):
        bucket = f"bench-{name}-bucket-{b:03d}"
        account.buckets.append(
            BucketSeed(
                bucket,
                REGIONS[b % len(REGIONS)],
                policy=_doc(
                    {
                        "Sid": "DenyInsecure",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ),
                tags={"team": rng.choice(TEAMS), "env": rng.choice(["prod", "dev"])},
            )
        )
    for region in REGIONS:
        for q in range(sizes.queues):
            account.queues.append(
                QueueSeed(
                    f"{name}-queue-{q:03d}",
                    region,
                    policy=_doc(_statement(rng, "*")) if q % 2 == 0 else None,
                    tags={"team": rng.choice(TEAMS)},
                )
            )
        for t in range(sizes.topics):
            account.topics.append(
                TopicSeed(
                    f"{name}-topic-{t:03d}",
                    region,
                    policy=_doc(_statement(rng, "*")) if t % 2 == 0 else None,
                    tags={"team": rng.choice(TEAMS)},
                )
            )
    return account


def organisation_spec(sizes: Sizes, roles: list[int] | None = None) -> list[AccountSeed]:
    """``sizes.accounts`` accounts (or one per entry of ``roles``, with that many roles)."""
    rng = random.Random(sizes.seed)
    counts = roles if roles is not None else [sizes.roles] * sizes.accounts
    specs = []
    for index, count in enumerate(counts):
        per_account = Sizes(**{**asdict(sizes), "roles": count})
        specs.append(account_spec(f"bench{index:03d}", per_account, rng))
    return specs


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def fill_backends(seed: AccountSeed) -> None:
    """Load one account's contents straight into moto's backends (this process is the server)."""
    from moto.backends import get_backend

    iam = get_backend("iam")[seed.id]["global"]
    for name, document in seed.policies.items():
        iam.create_policy("", "/", json.dumps(document), name, [])
    for group in seed.groups:
        iam.create_group(group.name)
        for pname, document in group.inline.items():
            iam.put_group_policy(group.name, pname, json.dumps(document))
        for pname in group.attached:
            iam.attach_group_policy(seed.policy_arn(pname), group.name)
    for role in seed.roles:
        iam.create_role(
            role.name, json.dumps(role.trust_policy), "/", None, "", _tag_list(role.tags), None
        )
        for pname, document in role.inline.items():
            iam.put_role_policy(role.name, pname, json.dumps(document))
        for pname in role.attached:
            iam.attach_role_policy(seed.policy_arn(pname), role.name)
    for user in seed.users:
        iam.create_user("us-east-1", user.name, "/", _tag_list(user.tags))
        for gname in user.groups:
            iam.add_user_to_group(gname, user.name)
        for pname, document in user.inline.items():
            iam.put_user_policy(user.name, pname, json.dumps(document))
        for pname in user.attached:
            iam.attach_user_policy(seed.policy_arn(pname), user.name)
    s3 = get_backend("s3")[seed.id]["aws"]
    for bucket in seed.buckets:
        s3.create_bucket(bucket.name, bucket.region)
        if bucket.policy:
            s3.put_bucket_policy(bucket.name, json.dumps(bucket.policy).encode())
        if bucket.tags:
            s3.put_bucket_tagging(bucket.name, bucket.tags)
    for queue in seed.queues:
        attributes = {"Policy": json.dumps(queue.policy)} if queue.policy else {}
        get_backend("sqs")[seed.id][queue.region].create_queue(queue.name, queue.tags, **attributes)
    for topic in seed.topics:
        attributes = {"Policy": json.dumps(topic.policy)} if topic.policy else {}
        get_backend("sns")[seed.id][topic.region].create_topic(topic.name, attributes, topic.tags)


class BackendSeeder(Seeder):
    """The demo's Seeder (organisation, accounts, spoke role) with contents loaded directly."""

    def fill(self, seed: AccountSeed) -> None:
        fill_backends(seed)


def seed_into_moto(endpoint_url: str, specs: list[AccountSeed], seed: int = 42) -> None:
    """Organisation and accounts through the Seeder (HTTP), contents through the backends."""
    # moto's own RNG draws the account ids: seeded, they are the same on every run.
    request = urllib.request.Request(f"{endpoint_url}/moto-api/seed?a={seed}", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    seeder = BackendSeeder(endpoint_url)
    seeder.organisation()
    for spec in specs:
        seeder.create_account(spec)
