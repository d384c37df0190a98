"""Request and response models of the control API (pydantic v2, with OpenAPI examples)."""
