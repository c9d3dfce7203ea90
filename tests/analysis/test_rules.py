"""The finding rules and the evaluation primitives, on documents written here (no servers)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from inventory.analysis.findings import (
    Organisation,
    analyse_document,
    combined_escalation,
    document_findings,
    exposure,
    grammar,
)
from inventory.analysis.policy import (
    CONDITIONAL,
    NO,
    YES,
    glob_intersects,
    pattern_level,
    statements,
)

OWN, MEMBER, OUTSIDE = "111111111111", "222222222222", "999999999999"
ORG = Organisation(frozenset({OWN, MEMBER}))


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def grant(principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/*", **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        (grant("*"), {"public_access"}),
        (grant({"AWS": "*"}), {"public_access"}),
        (grant("*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}), set()),
        (grant("*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), set()),
        # A negation lets everyone else in; secure transport limits nobody.
        (grant("*", Condition={"StringNotEquals": {"aws:PrincipalAccount": OUTSIDE}}),
         {"public_access"}),
        (grant("*", Condition={"Bool": {"aws:SecureTransport": "true"}}), {"public_access"}),
        ({**grant("*"), "Effect": "Deny"}, set()),
        (grant({"AWS": f"arn:aws:iam::{OUTSIDE}:root"}), {"outside_organisation"}),
        (grant({"AWS": OUTSIDE}), {"outside_organisation"}),
        (grant({"AWS": f"arn:aws:iam::{MEMBER}:role/reader"}), set()),
        (grant({"Service": "cloudtrail.amazonaws.com"}), set()),
    ],
)  # fmt: skip
def test_exposure_of_a_resource_policy(statement, found):
    result = exposure(doc(statement), OWN, ORG, "resource policy")
    assert {f["category"] for f in result} == found


def test_an_escalation_split_over_two_policies_is_found_on_the_principal_only():
    pass_role = analyse_document(
        doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})
    )
    functions = analyse_document(
        doc({"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"],
             "Resource": "*"})
    )  # fmt: skip
    assert pass_role["privilege_escalation"] == functions["privilege_escalation"] == []
    combined = combined_escalation([pass_role, functions], None)
    assert [f["id"] for f in combined] == ["privilege_escalation:several policies together"]
    assert "PassExistingRoleToNewLambdaThenInvoke" in {
        m["type"] for m in combined[0]["detail"]["methods"]
    }
    # A Deny of iam:PassRole in either document removes it.
    deny = analyse_document(doc({"Effect": "Deny", "Action": "iam:PassRole", "Resource": "*"}))
    assert combined_escalation([pass_role, functions, deny], None) == []


def test_a_boundary_drops_what_it_does_not_allow():
    admin = analyse_document(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    unbounded = {f["category"] for f in document_findings("p", admin, None, False)}
    assert unbounded == {
        "full_admin",
        "privilege_escalation",
        "resource_exposure",
        "credentials_exposure",
        "data_exfiltration",
        "infrastructure_modification",
    }
    s3_only = statements(doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    bounded = {f["category"]: f for f in document_findings("p", admin, s3_only, False)}
    assert set(bounded) == {"data_exfiltration", "infrastructure_modification", "resource_exposure"}
    assert bounded["data_exfiltration"]["detail"]["actions"] == ["s3:GetObject"]


def test_parliament_grammar_on_a_trust_policy_ignores_the_missing_resource():
    trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                 "Action": "sts:AssumeRole"})  # fmt: skip
    assert grammar(trust, trust=True) == []
    typo = grammar(doc({"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "*"}))
    assert [(g["issue"], g["severity"]) for g in typo] == [("UNKNOWN_ACTION", "low")]


@pytest.mark.parametrize(
    ("pattern", "resource", "level"),
    [
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/key", YES),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::c/key", NO),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/*", YES),  # covers every object
        ("arn:aws:s3:::b/reports/*", "arn:aws:s3:::b/*", CONDITIONAL),  # some objects
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/*", CONDITIONAL),
        ("arn:aws:s3:::B/*", "arn:aws:s3:::b/key", NO),  # resources are case-sensitive
        ("arn:aws:s3:::b/${aws:username}/*", "arn:aws:s3:::b/alice/x", CONDITIONAL),
        ("*", "arn:aws:s3:::b/key", YES),
    ],
)
def test_pattern_level(pattern, resource, level):
    assert pattern_level(pattern, resource) == level


@pytest.mark.parametrize(
    ("a", "b", "meet"),
    [("a*c", "ab*", True), ("a*c", "b*", False), ("*x", "*y", False), ("a?c", "abc", True),
     ("abc", "abd", False), ("*", "", True)],
)  # fmt: skip
def test_glob_intersects(a, b, meet):
    assert glob_intersects(a, b) is meet
    assert glob_intersects(b, a) is meet


def test_loading_the_libraries_prints_nothing_and_keeps_logging_and_the_path():
    # A fresh process: Cloudsplaining adds a stderr handler, Parliament's pkg_resources import
    # warns and appends setuptools' vendored packages to sys.path (where they would be found
    # as installed distributions); none of that may outlast the import.
    script = (
        "import logging, sys\n"
        "from inventory.analysis import libraries\n"
        "def state():\n"
        "    loggers = [logging.getLogger(n) for n in libraries.LOGGERS]\n"
        "    return [(g.level, list(g.handlers)) for g in loggers], list(sys.path)\n"
        "before = state()\n"
        "libraries.load()\n"
        "sys.exit(0 if state() == before else 3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
