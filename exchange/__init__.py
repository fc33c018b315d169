"""数据跑腿 Exchange: departments publish records, processors join them per person, approvals query."""

__version__ = "0.1.0"
