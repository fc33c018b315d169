"""The department mappings, and for each file department the source that reads its export.

Adding a department is adding a mapping (and its schema) here, not a new pipeline.
"""

from __future__ import annotations

from connectors.mappings.base import Converted, Mapping, RecordRejected, Rejection
from connectors.mappings.identity import IdentityMapping
from connectors.mappings.property import PropertyMapping
from connectors.mappings.social import SocialMapping
from connectors.mappings.tax import TaxMapping
from connectors.sources import CsvSource, JsonlSource, Source

MAPPINGS: dict[str, Mapping] = {
    mapping.department: mapping
    for mapping in (IdentityMapping(), TaxMapping(), SocialMapping(), PropertyMapping())
}

# How each file department's export is read. Sources are stateless, so one instance serves every
# file; property has none here because its rows are polled from the registry's database.
SOURCES: dict[str, Source] = {
    "identity": CsvSource(IdentityMapping.columns, encoding="utf-8", bom=True),
    "tax": CsvSource(TaxMapping.columns, encoding="gb18030"),
    "social": JsonlSource(),
}

__all__ = ["MAPPINGS", "SOURCES", "Converted", "Mapping", "RecordRejected", "Rejection"]
