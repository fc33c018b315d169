"""The API's routes, one module per resource; each handler is audited (exchange.api.auditing)."""
