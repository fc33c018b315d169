"""Large, valid department exports for benchmarks, written fast from templates (not `exchange synth`,
whose realism costs time that would dominate a million-record benchmark)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

from connectors.mappings.identity import IdentityMapping
from connectors.mappings.tax import TaxMapping
from exchange.subjects import citizen_id_check_character

EMPLOYER = "9144011470K239T3E2"


def citizen_ids(count: int) -> Iterator[str]:
    """`count` distinct valid citizen IDs."""
    born = dt.date(1950, 1, 1)
    for n in range(count):
        day = born + dt.timedelta(days=n // 1000 % 20000)
        body = f"440106{day:%Y%m%d}{n % 1000:03d}"
        yield body + citizen_id_check_character(body)


def write_identity(path: Path, records: int) -> None:
    """公安: UTF-8 with BOM, one row per person."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write(",".join(IdentityMapping.columns) + "\r\n")
        for citizen_id in citizen_ids(records):
            out.write(
                f"{citizen_id},张三,1,01,{citizen_id[6:14]},"
                '"广州市天河路1号,""东""座",440106,1,0,1,2024-03-05 10:00:00\r\n'
            )


def write_tax(path: Path, records: int) -> None:
    """税务: GB18030, twelve monthly vouchers per person."""
    with path.open("w", encoding="gb18030", newline="") as out:
        out.write(",".join(TaxMapping.columns) + "\r\n")
        ids = citizen_ids(records // 12 + 1)
        citizen_id = ""
        for n in range(records):
            if n % 12 == 0:
                citizen_id = next(ids)
            month = n % 12 + 1
            last = (dt.date(2026, month % 12 + 1, 1) - dt.timedelta(days=1)).day if month < 12 else 31
            out.write(
                f"{n:019d},{citizen_id},𠮷涛,工资薪金所得,2026-{month:02d}-01,2026-{month:02d}-{last:02d},"
                f"30245.00,757.35,{EMPLOYER},2026-{month:02d}-15,14401060000,1,0\r\n"
            )


def write_social(path: Path, records: int) -> None:
    """人社: JSON Lines, 60 contribution lines per person (5 insurance types × 12 months)."""
    types = ("110", "310", "210", "410", "510")
    with path.open("w", encoding="utf-8") as out:
        ids = citizen_ids(records // 60 + 1)
        citizen_id = ""
        for n in range(records):
            if n % 60 == 0:
                citizen_id = next(ids)
            line = {
                "jfmxid": f"JF{n:012d}",
                "aac002": citizen_id,
                "aac003": "罗艳",
                "aae140": types[n % 5],
                "aae002": f"2026{n // 5 % 12 + 1:02d}",
                "aab998": EMPLOYER,
                "aab004": "广州餐饮有限公司",
                "aae180": 1817500,
                "dwjfje": 254450,
                "grjfje": 145400,
                "aae078": "1",
                "yxbz": "1",
                "bbh": 1,
                "gxsj": "2026-10-20 09:00:00",
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


WRITERS = {
    "identity": ("identity.csv", write_identity),
    "tax": ("tax.csv", write_tax),
    "social": ("social.jsonl", write_social),
}
