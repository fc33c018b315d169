"""A source record corrected to another person: the revokes that keep every subject's records exact.

Records are keyed by the subject they name, and each subject's profile folds its own. When 税务
corrects a voucher (a higher version of the same 电子税票号码) to another 纳税人识别号, or 人社 a
contribution line (`jfmxid`) to another `aac002`, the subject named before still holds the lower
version and would go on counting it. DEPARTMENTS.md: "a higher version of the same id supersedes a
lower one, whatever order they arrive in".

So a connector remembers, per source record id, the highest version it sent each subject (records and
revokes alike), and whenever a subject's is below the id's highest, sends that subject a revoke at the
id's highest version: its fold then takes the record out (a revoke wins over every lower version),
whichever of the versions arrives first. Pure: the file connectors keep `Sent` beside their positions
(`connectors.sent`). The datasets: those whose records name one person by a source id of their own
(`MOVABLE`); an identity record's id is the person, and a title's owners are revoked by the property
connector itself.
"""

from __future__ import annotations

from typing import Any

from connectors.mappings.base import event_id
from connectors.records import Converted

MOVABLE = frozenset({"tax.payment", "social.contribution"})
# Per source record id: subject (normalised citizen ID) -> the highest version sent to it.
Sent = dict[str, int]


def revokes(sent: Sent, subject: str, version: int) -> list[tuple[str, int]]:
    """The (subject, version) revokes to send with the record `version` of a source id for `subject`,
    given what was sent for that id (`sent`, updated in place).

    Every subject whose highest version is below the id's highest gets a revoke at that highest: the
    subjects named before a correction to another person, and this record's own subject when a
    correction to another person came first. The subjects holding the highest version get none.
    """
    # Versions may be zero or negative (人社's bbh is any integer): a subject new to the id starts at it.
    sent[subject] = max(sent.get(subject, version), version)
    highest = max(sent.values())
    moved = [(other, highest) for other, known in sent.items() if known < highest]
    for other, _ in moved:
        sent[other] = highest
    return moved


def revoke_record(converted: Converted, subject: str, version: int) -> Converted:
    """The revoke, for `subject` at `version`, of the source record `converted` names another person in.

    It carries the source record's fields, but the subject's own ID in place of the other person's and no
    name (the other person's is not this subject's to hold); its event id is its own, and the same each
    time it is sent.
    """
    record: dict[str, Any] = dict(converted.record)
    envelope = dict(record["envelope"])
    source_id = envelope["source_record_id"]
    envelope.update(
        event_id=event_id(envelope["department"], source_id, version, f"moved:{subject}"),
        source_version=version,
        op="revoke",
    )
    record.update(envelope=envelope, citizen_id=subject, name="")
    return Converted(subject, record)
