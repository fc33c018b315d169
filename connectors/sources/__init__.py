"""Readers of department export files, yielding records with the exact bytes and offsets to resume from."""

from connectors.records import Rejection, SourceRecord
from connectors.sources.base import Source
from connectors.sources.csvfile import CsvSource
from connectors.sources.jsonl import JsonlSource

__all__ = ["CsvSource", "JsonlSource", "Rejection", "Source", "SourceRecord"]
