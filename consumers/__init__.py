"""Consumers of the exchange's topics: the PostgreSQL sink, approvals (秒批), change subscriptions."""
