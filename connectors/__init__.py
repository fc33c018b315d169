"""Department connectors: read a department's own export, convert it to the canonical schema, publish it."""
