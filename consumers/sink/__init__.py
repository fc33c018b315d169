"""The PostgreSQL sink (`exchange sink`): every dataset record version, the profiles and their history.

Modules: `tables` and `profiles` map decoded records to rows (pure); `batch` decodes polled records
into a batch; `writer` writes a batch in one transaction (`history` for the profile tables,
`offsets` for consumer_offsets, `database` for retries); `rebalance` seeks assigned partitions to
their stored offsets; `consumer` is the loop.
"""

from consumers.sink.consumer import Sink, SinkOptions, SinkSummary, sink_group

__all__ = ["Sink", "SinkOptions", "SinkSummary", "sink_group"]
