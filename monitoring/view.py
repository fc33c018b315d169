"""What `exchange top` draws: the dashboard's figures as rich tables, from a `Window` and the lag."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from exchange.lag import PartitionLag
from exchange.relay_lag import RelayPosition
from monitoring.figures import Window

_NONE = "–"


def count(value: float) -> str:
    """A counter's value: whole, with thousands separators."""
    return f"{value:,.0f}"


def per_second(value: float | None) -> str:
    """A rate, or a dash when there is none yet (after the first scrape)."""
    return _NONE if value is None else f"{value:,.1f}/s"


def duration(seconds: float | None) -> str:
    """A latency in the unit that reads best."""
    if seconds is None:
        return _NONE
    if seconds < 1:
        return f"{seconds * 1000:,.1f} ms"
    return f"{seconds:,.2f} s"


def processes(targets: Mapping[str, str], up: Mapping[str, bool]) -> Table:
    """Every scraped process and whether it answered."""
    table = Table("process", "/metrics", "state", title="processes", title_justify="left")
    for name, url in targets.items():
        state = Text("up", style="green") if up.get(name) else Text("down", style="bold red")
        table.add_row(name, url, state)
    return table


def connectors(w: Window) -> Table | None:
    """Records read and published per department and dataset."""
    published = w.by("exchange_connector_records_published_total", "department", "dataset")
    if not published:
        return None
    rates = w.rates_by("exchange_connector_records_published_total", "department", "dataset")
    read = w.by("exchange_connector_records_read_total", "department")
    table = _table("connectors", ("department", "dataset"), ("read", "published", "published/s"))
    for (department, dataset), total in sorted(published.items()):
        rate = None if rates is None else rates.get((department, dataset), 0.0)
        table.add_row(department, dataset, count(read.get((department,), 0)), count(total), per_second(rate))
    return table


def dead_letters(w: Window) -> Table | None:
    """Rejected records per department and reason code."""
    return _counter_table(
        w, "dead letters", "exchange_connector_records_rejected_total", ("department", "reason")
    )


def processor(w: Window) -> Table | None:
    """Events folded per dataset, profiles emitted, batch sizes and fold time."""
    events = w.by("exchange_processor_events_total", "dataset")
    if not events:
        return None
    rates = w.rates_by("exchange_processor_events_total", "dataset")
    table = _table("processor", ("dataset",), ("events", "events/s"))
    for (dataset,), total in sorted(events.items()):
        table.add_row(
            dataset, count(total), per_second(None if rates is None else rates.get((dataset,), 0.0))
        )
    table.add_section()
    profiles = "exchange_processor_profiles_emitted_total"
    table.add_row("profiles emitted", count(w.total(profiles)), per_second(w.rate(profiles)))
    batch = w.mean("exchange_processor_batch_events")
    table.add_row("mean batch", _NONE if batch is None else f"{batch:,.0f} events", "")
    fold = "exchange_processor_fold_seconds"
    table.add_row("fold p50 / p99", duration(w.quantile(0.5, fold)), duration(w.quantile(0.99, fold)))
    return table


def sink(w: Window) -> Table | None:
    """Rows committed per table, freshness p50/p99 per table, and commit time."""
    rows = w.by("exchange_sink_rows_written_total", "table")
    if not rows:
        return None
    rates = w.rates_by("exchange_sink_rows_written_total", "table")
    table = _table("sink", ("table",), ("rows", "rows/s", "freshness p50", "freshness p99"))
    fresh = "exchange_sink_freshness_seconds"
    for (name,), total in sorted(rows.items()):
        rate = None if rates is None else rates.get((name,), 0.0)
        p50, p99 = w.quantile(0.5, fresh, table=name), w.quantile(0.99, fresh, table=name)
        table.add_row(name, count(total), per_second(rate), duration(p50), duration(p99))
    table.add_section()
    commit = "exchange_sink_commit_seconds"
    table.add_row(
        "commit p50 / p99", "", "", duration(w.quantile(0.5, commit)), duration(w.quantile(0.99, commit))
    )
    return table


def api(w: Window) -> Table | None:
    """Requests, latency and server errors per route and method; the audit batches' commit time, and the
    batches that failed (each failed its requests)."""
    name = "exchange_api_request_seconds"
    requests = w.by(f"{name}_count", "route", "method")
    if not requests:
        return None
    rates = w.rates_by(f"{name}_count", "route", "method")
    errors = w.by(f"{name}_count", "route", "method", "status")
    table = _table("api", ("route", "method"), ("requests", "req/s", "p50", "p99", "5xx"))
    for (route, method), total in sorted(requests.items()):
        failed = sum(
            v for (r, m, status), v in errors.items() if (r, m) == (route, method) and status[:1] == "5"
        )
        rate = None if rates is None else rates.get((route, method), 0.0)
        p50 = w.quantile(0.5, name, route=route, method=method)
        p99 = w.quantile(0.99, name, route=route, method=method)
        table.add_row(
            route, method, count(total), per_second(rate), duration(p50), duration(p99), count(failed)
        )
    commit = "exchange_api_audit_commit_seconds"
    batches = w.by(f"{commit}_count", "outcome")
    if batches:
        table.add_section()
        failed = batches.get(("failed",), 0.0)
        p50, p99 = w.quantile(0.5, commit, outcome="committed"), w.quantile(0.99, commit, outcome="committed")
        table.add_row("audit commit", "", "", "", duration(p50), duration(p99), count(failed))
    return table


def refusals(w: Window) -> Table | None:
    """Requests refused for want of a grant, per route and reason."""
    return _counter_table(w, "api refusals", "exchange_api_refusals_total", ("route", "reason"))


def proofs(w: Window) -> Table | None:
    """Electronic proofs issued per proof type."""
    return _counter_table(w, "proofs issued", "exchange_proofs_issued_total", ("proof_type",))


def decisions(w: Window) -> Table | None:
    """Automated decisions per service item and outcome."""
    return _counter_table(w, "decisions", "exchange_decisions_total", ("service_item", "outcome"))


def lag(lags: Sequence[PartitionLag] | None) -> RenderableType:
    """Consumer lag per group and topic, summed over partitions."""
    if lags is None:
        return Text("consumer lag: Kafka did not answer", style="bold red")
    totals: dict[tuple[str, str], list[int]] = {}
    for item in lags:
        entry = totals.setdefault((item.group, item.topic), [0, 0, 0])
        entry[0] += item.lag
        entry[1] += item.committed
        entry[2] += item.end
    table = _table("consumer lag", ("group", "topic"), ("lag", "committed", "end"))
    for (group, topic), (behind, committed, end) in sorted(totals.items()):
        style = "bold yellow" if behind else ""
        table.add_row(group, topic, Text(count(behind), style=style), count(committed), count(end))
    return table


def relay(position: RelayPosition | None, failed: bool = False) -> RenderableType | None:
    """How far the audit relay is behind the audit log: rows of audit_log not yet on exchange.audit.v1
    (None: not read, or no API tables; `failed`: PostgreSQL did not answer)."""
    if failed:
        return Text("audit relay: PostgreSQL did not answer", style="bold red")
    if position is None:
        return None
    table = _table("audit relay", (), ("behind", "next seq", "last seq"))
    style = "bold yellow" if position.behind else ""
    table.add_row(
        Text(count(position.behind), style=style), count(position.next_seq), count(position.last_seq)
    )
    return table


def screen(
    w: Window,
    targets: Mapping[str, str],
    up: Mapping[str, bool],
    lags: Sequence[PartitionLag] | None,
    relay_position: RelayPosition | None = None,
    *,
    show_lag: bool = True,
    relay_failed: bool = False,
) -> Group:
    """The whole view, top to bottom; sections without data are left out."""
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    parts: list[RenderableType] = [Text(f"数据跑腿 Exchange · {stamp}", style="bold"), processes(targets, up)]
    sections: Iterable[Table | None] = (
        connectors(w),
        dead_letters(w),
        processor(w),
        sink(w),
        api(w),
        refusals(w),
        proofs(w),
        decisions(w),
    )
    parts.extend(section for section in sections if section is not None)
    if show_lag:
        parts.append(lag(lags))
        relayed = relay(relay_position, relay_failed)
        if relayed is not None:
            parts.append(relayed)
    return Group(*parts)


def _table(title: str, labels: Sequence[str], figures: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in labels:
        table.add_column(column)
    for column in figures:
        table.add_column(column, justify="right")
    return table


def _counter_table(w: Window, title: str, name: str, keys: tuple[str, ...]) -> Table | None:
    totals = w.by(name, *keys)
    if not totals:
        return None
    rates = w.rates_by(name, *keys)
    table = _table(title, keys, ("total", "/s"))
    for group, total in sorted(totals.items()):
        table.add_row(*group, count(total), per_second(None if rates is None else rates.get(group, 0.0)))
    return table
