"""The API's request and response bodies: pydantic models, which make its OpenAPI description."""
