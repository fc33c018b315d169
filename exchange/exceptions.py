"""The exchange's errors: one root, one class per thing that can go wrong at the core and its edges."""


class ExchangeError(Exception):
    """Root of every error the exchange raises on purpose."""


class ConfigurationError(ExchangeError):
    """Raised when settings or policy files are missing, malformed or contradict each other."""


class InvalidIdentifierError(ExchangeError):
    """Raised when a citizen ID or a 统一社会信用代码 fails its length, character, date or check rule."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SchemaError(ExchangeError):
    """Raised when a schema cannot be loaded, or a changed schema breaks compatibility."""


class SerializationError(ExchangeError):
    """Raised when bytes are not single-object encoded Avro of a schema the exchange knows."""


class StackError(ExchangeError):
    """Raised when the local Kafka or PostgreSQL cannot be installed, started, reached or stopped."""


class StorageError(ExchangeError):
    """Raised when PostgreSQL refuses a statement the exchange cannot retry."""
