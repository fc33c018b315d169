"""Consent and delegation checks on a grant: pure, on the consents in force."""

from __future__ import annotations

import dataclasses
import datetime as dt

from exchange.consent import NO_DELEGATE, check, consent_event
from exchange.policy import load_policy
from exchange.serialization import AvroCodec

CODEC = AvroCodec()

GRANT = load_policy().grants["talent-office"]["talent-green-card"]
OPEN_GRANT = dataclasses.replace(GRANT, consent_required=False)


def test_a_grant_requiring_consent_needs_the_subjects_consent_in_force() -> None:
    assert check(GRANT, {}, subject_key="s", applicant_key=None).reason == "consent_missing"  # type: ignore[union-attr]
    assert check(GRANT, {NO_DELEGATE: False}, subject_key="s", applicant_key=None) is not None
    assert check(GRANT, {NO_DELEGATE: True}, subject_key="s", applicant_key=None) is None
    assert check(OPEN_GRANT, {}, subject_key="s", applicant_key=None) is None


def test_an_applicant_other_than_the_subject_needs_a_delegation() -> None:
    refusal = check(OPEN_GRANT, {}, subject_key="s", applicant_key="d")
    assert refusal is not None and refusal.reason == "delegation_missing"
    assert check(OPEN_GRANT, {"d": True}, subject_key="s", applicant_key="d") is None
    assert check(OPEN_GRANT, {"d": False}, subject_key="s", applicant_key="d") is not None
    assert check(OPEN_GRANT, {}, subject_key="s", applicant_key="s") is None


def test_consent_events_name_subjects_by_key_only() -> None:
    event = consent_event("k" * 64, "talent-office", "talent-green-card", "grant", delegate_key="d" * 64)
    assert event["subject_key"] == "k" * 64 and event["delegate_key"] == "d" * 64 and event["op"] == "grant"
    assert event["occurred_at"].microsecond % 1000 == 0  # what the record's timestamp-millis keeps


def test_a_grant_and_its_withdrawal_within_one_second_keep_their_order() -> None:
    at = dt.datetime(2026, 11, 24, 10, 0, 0, 200_000, tzinfo=dt.UTC)
    grant = consent_event("k" * 64, "talent-office", "talent-green-card", "grant", at=at)
    revoke = consent_event(
        "k" * 64, "talent-office", "talent-green-card", "revoke", at=at + dt.timedelta(milliseconds=600)
    )
    assert grant["occurred_at"] < revoke["occurred_at"]
    assert CODEC.decode(CODEC.encode("consent", revoke))[1]["occurred_at"] == revoke["occurred_at"]
