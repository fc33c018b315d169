"""Synthetic departments: `generate` writes the four exports and the facts they must yield.

`reference` is the independent reference implementation of the facts and 秒批 decisions; it also
reads a directory of exports (`reference.expected_from_directory`).
"""

from connectors.synth.generator import DEFAULT_REFERENCE_DATE, Summary, generate

__all__ = ["DEFAULT_REFERENCE_DATE", "Summary", "generate"]
