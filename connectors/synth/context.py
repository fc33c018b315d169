"""What every part of one generation run shares: the random source, the date, pools, counters."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from connectors.synth.codes import GUANGZHOU_DISTRICTS
from connectors.synth.identifiers import CitizenIds, new_uscc
from connectors.synth.months import month_of
from connectors.synth.names import NamePools

OLDEST_BIRTH = dt.date(1915, 1, 1)


@dataclass(frozen=True, slots=True)
class Employer:
    """A 缴费单位 / 扣缴义务人: its 统一社会信用代码, name and district."""

    uscc: str
    name: str
    district: str
    public_institution: bool


@dataclass
class Context:
    """The state of one run; record numbers are counters so that source record ids never repeat."""

    rng: random.Random
    reference_date: dt.date
    pools: NamePools
    employers: tuple[Employer, ...]
    ids: CitizenIds
    month: int = field(init=False)
    _voucher: int = 0
    _line: int = 0
    _title: int = 0

    def __post_init__(self) -> None:
        self.month = month_of(self.reference_date)

    @classmethod
    def create(cls, seed: int, people: int, reference_date: dt.date) -> Context:
        """A fresh run: Faker pools, an employer pool sized to the population, an ID allocator."""
        rng = random.Random(seed)
        pools = NamePools.build(seed)
        employers = tuple(_employer(rng, pools) for _ in range(min(max(20, people // 40), 20_000)))
        return cls(rng, reference_date, pools, employers, CitizenIds(OLDEST_BIRTH, reference_date))

    def voucher(self, district: str) -> str:
        """A new 电子税票号码 (19 digits)."""
        self._voucher += 1
        return f"3{district}{self._voucher:012d}"

    def line_id(self) -> str:
        """A new 人社 contribution line id (jfmxid)."""
        return f"JF{self.reserve_lines(1):09d}"

    def reserve_lines(self, count: int) -> int:
        """The first of `count` consecutive new jfmxid numbers."""
        self._line += count
        return self._line - count + 1

    def title_number(self, year: int, city: str) -> str:
        """A new 不动产权证书号, e.g. 粤(2021)广州市不动产权第0123456号."""
        self._title += 1
        return f"粤({year}){city}不动产权第{self._title:07d}号"

    def unit_number(self, district: str) -> str:
        """A 不动产单元号: district, 地籍区/子区 and 宗地 digits, GB and the building unit (28 characters)."""
        return f"{district}{self.rng.randrange(10**12):012d}GB{self.rng.randrange(10**8):08d}"


def _employer(rng: random.Random, pools: NamePools) -> Employer:
    district = rng.choice(tuple(GUANGZHOU_DISTRICTS))
    public = rng.random() < 0.15
    name = rng.choice(pools.companies)
    if public:
        unit = rng.choice(("人民医院", "第一中学", "图书馆", "疾控中心"))
        name = f"广州市{GUANGZHOU_DISTRICTS[district]}{unit}"
    return Employer(new_uscc(rng, district, public), name, district, public)
