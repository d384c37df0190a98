"""Settings of the console (environment variables, see ``docs/console.md``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsoleSettings"]


def _base_url(value: str, name: str) -> str:
    """``""`` (same origin / not configured) or an absolute http(s) URL without a
    trailing slash."""
    value = value.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{name} must be an http(s) URL such as http://127.0.0.1:18080, got {value!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or fragment")
    return value


class ConsoleSettings(BaseSettings):
    """Every field reads the environment variable of the same name, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    console_upstream_url: str = Field(
        default="http://127.0.0.1:18080",
        description=(
            "Where the CONSOLE SERVER sends the pages' API calls (the gateway), with the "
            "logged-in user's key: the browser only talks to the console."
        ),
    )
    console_cookie_secure: bool = Field(
        default=False,
        description="Mark the session cookie Secure (set it when the console is served over HTTPS).",
    )
    console_session_secret: str = Field(
        default="",
        repr=False,
        description="Secret that seals the login cookie (the API key inside it is encrypted "
        "with AES-256-GCM under a key derived from it). Give every replica the same value; "
        "changing it ends every session. Empty: a random one per process, with a warning "
        "(logins then end at a restart). `make up` generates one; compose requires it.",
    )
    console_session_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="How long a login lasts."
    )
    console_grafana_url: str = Field(default="", description="Grafana link (hidden when empty).")
    console_prometheus_url: str = Field(
        default="", description="Prometheus link (hidden when empty)."
    )
    console_docs_url: str = Field(
        default="/docs", description="API documentation link (the gateway's /docs)."
    )
    console_refresh_seconds: int = Field(
        default=30, ge=0, le=3600, description="Auto-refresh period of the pages; 0 disables it."
    )
    console_actor: str = Field(
        default="console",
        min_length=1,
        max_length=200,
        description="X-Actor of the lifecycle calls when the user gave no name at login "
        "(the audit actor is then `<key's principal> (console)`).",
    )
    log_level: str = Field(default="INFO")

    @field_validator("console_upstream_url", "console_grafana_url", "console_prometheus_url")
    @classmethod
    def _urls(cls, value: str, info: ValidationInfo) -> str:
        return _base_url(value, (info.field_name or "url").upper())

    @field_validator("console_docs_url")
    @classmethod
    def _docs(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("/") and not value.startswith("//"):
            return value
        return _base_url(value, "CONSOLE_DOCS_URL")
