"""人社's contribution lines for a person: one per insurance type and month worked, plus later versions.

Later versions (bbh 2) are how 人社 changes a line: arrears later received, a line revoked, a base
corrected, an employer corrected. Some are written before the line they supersede.
"""

from __future__ import annotations

import datetime as dt

from connectors.synth.codes import INSURANCE_RATES, PENSION_ENTERPRISE, PENSION_INSTITUTION
from connectors.synth.context import Context
from connectors.synth.months import first_day, month_of_yyyymm, stamp, yyyymm
from connectors.synth.people import Job, Person

_OTHER_TYPES = (("310", 0.95), ("210", 0.8), ("410", 0.8), ("510", 0.5))
_BASE_FLOOR, _BASE_CEILING = 5_284_00, 26_421_00  # Guangzhou's contribution base limits, fen

SocialLine = dict[str, str | int]


def social_rows(context: Context, person: Person) -> list[SocialLine]:
    """The person's 人社 lines in file order; none without jobs."""
    if not person.jobs:
        return []
    rng = context.rng
    aac002 = person.written_id(context, 0.3)
    first = person.jobs[0].first
    # some types begin after the pension does, so the types' facts differ
    starts = [
        (code, first + (rng.randint(1, 6) if rng.random() < 0.2 else 0))
        for code, chance in _OTHER_TYPES
        if rng.random() < chance
    ]
    base = min(max(person.salary * 100, _BASE_FLOOR), _BASE_CEILING) // 100 * 100
    # For some still at work 人社 has the reference month's lines already: the facts count back from
    # M-1, and a received month after it must not change them.
    current = person.jobs[-1].last == context.month - 1 and rng.random() < 0.2
    lines: list[SocialLine] = []
    for job in person.jobs:
        pension = PENSION_INSTITUTION if job.employer.public_institution else PENSION_ENTERPRISE
        # one template per insurance type; a line is a copy with its month filled in
        templates = [
            (start, _template(person.name, aac002, job, code, base))
            for code, start in [(pension, first), *starts]
        ]
        last = job.last + 1 if current and job is person.jobs[-1] else job.last
        for month in range(job.first, last + 1):
            aae002 = yyyymm(month)
            gxsj = f"{aae002[:4]}-{aae002[4:]}-20 09:00:00"
            for start, template in templates:
                if month >= start:
                    line = template.copy()
                    line["aae002"] = aae002
                    line["gxsj"] = gxsj
                    lines.append(line)
    number = context.reserve_lines(len(lines))
    for offset, line in enumerate(lines):
        line["jfmxid"] = f"JF{number + offset:09d}"
    return _with_versions(context, lines)


def _template(name: str, aac002: str, job: Job, code: str, base: int) -> SocialLine:
    employer_rate, personal_rate = INSURANCE_RATES[code]
    return {
        "jfmxid": "",
        "aac002": aac002,
        "aac003": name,
        "aae140": code,
        "aae002": "",
        "aab998": job.employer.uscc,
        "aab004": job.employer.name,
        "aae180": base,
        "dwjfje": base * employer_rate // 10_000,
        "grjfje": base * personal_rate // 10_000,
        "aae078": "1",
        "yxbz": "1",
        "bbh": 1,
        "gxsj": "",
    }


def _with_versions(context: Context, lines: list[SocialLine]) -> list[SocialLine]:
    """Arrears (some received later), revocations, corrections; each changed line gets one bbh 2."""
    rng = context.rng
    if len(lines) < 10:
        return lines
    changes: dict[int, SocialLine] = {}
    if rng.random() < 0.2:
        month = lines[rng.randrange(len(lines))]["aae002"]
        received_later = rng.random() < 0.5
        for index, line in enumerate(lines):
            if line["aae002"] == month:
                line["aae078"] = "0"
                if received_later and rng.random() < 0.7:
                    changes[index] = {**line, "aae078": "1"}
    if rng.random() < 0.12:
        for index in rng.sample(range(len(lines)), rng.randint(1, 3)):
            changes.setdefault(index, {**lines[index], "yxbz": "0"})
    if rng.random() < 0.1:
        index = rng.randrange(len(lines))
        base = int(lines[index]["aae180"]) + rng.choice((-1, 1)) * 100_00
        employer_rate, personal_rate = INSURANCE_RATES[str(lines[index]["aae140"])]
        corrected = {
            "aae180": base,
            "dwjfje": base * employer_rate // 10_000,
            "grjfje": base * personal_rate // 10_000,
        }
        changes.setdefault(index, {**lines[index], **corrected})
    if rng.random() < 0.05 and len(context.employers) > 1:
        # the newest pension line first named the wrong employer: current_employer depends on bbh 2
        index = next(i for i in range(len(lines) - 1, -1, -1) if lines[i]["aae140"] in ("110", "120"))
        if index not in changes:
            changes[index] = dict(lines[index])
            wrong = rng.choice([e for e in context.employers[:3] if e.uscc != lines[index]["aab998"]])
            lines[index]["aab998"], lines[index]["aab004"] = wrong.uscc, wrong.name
    return _interleave(context, lines, changes)


def _interleave(
    context: Context, lines: list[SocialLine], changes: dict[int, SocialLine]
) -> list[SocialLine]:
    rng = context.rng
    last = context.reference_date.toordinal() - 1
    ordered: list[SocialLine] = []
    later: list[SocialLine] = []
    for index, line in enumerate(lines):
        change = changes.get(index)
        if change is None:
            ordered.append(line)
            continue
        written = first_day(month_of_yyyymm(str(line["aae002"]))).toordinal() + 20
        change["bbh"] = 2
        change["gxsj"] = stamp(dt.date.fromordinal(rng.randint(min(written, last), last)), 8, 0, 0)
        if rng.random() < 0.4:
            ordered += (change, line)  # the higher version arrives first
        else:
            ordered.append(line)
            later.append(change)
    return ordered + later
