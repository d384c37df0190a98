"""Logging in to the console with an API key.

``GET /console/login`` shows a form where the user pastes a key (and, optionally, their
name for the audit log). ``POST /console/login`` checks the key against the API (it must
at least read: scope ``read`` or ``admin``) and keeps it, sealed (encrypted and
authenticated, see :mod:`services.console.session`) with the user's name, in an HttpOnly,
SameSite=Strict cookie scoped to ``/console`` (``Secure`` with
``CONSOLE_COOKIE_SECURE=true``, for HTTPS), valid ``CONSOLE_SESSION_HOURS``.
``POST /console/logout`` deletes it. The pages redirect
to the form without one. A ``read`` key shows everything; the lifecycle buttons need an
``admin`` key (else the API's 403 message appears under them).
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.session import SESSION_COOKIE, SessionCodec
from services.console.settings import ConsoleSettings
from services.console.upstream import upstream_of

__all__ = ["LOGIN_PATH", "router", "safe_next"]

PREFIX = "/console"
LOGIN_PATH = f"{PREFIX}/login"
_MESSAGES = {
    "unknown": "This key is not valid (unknown, or revoked).",
    "scope": "This key cannot read experiments: log in with a read or admin key.",
    "unreachable": "The platform's API cannot be reached to check the key; try again.",
    "missing": "Paste an API key.",
    "expired": "Your session ended: log in again.",
}

_OLD_COOKIES = ("abflow_console_key", "abflow_console_user")

router = APIRouter(tags=["console"])


def safe_next(value: str | None) -> str:
    """A console path to go to after logging in (never another site)."""
    if value and value.startswith(f"{PREFIX}/") and "\\" not in value and LOGIN_PATH not in value:
        return value
    return f"{PREFIX}/experiments"


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def login_page(
    error: str | None = None, next_path: str = "", status_code: int = 200
) -> HTMLResponse:
    message = _MESSAGES.get(error or "", "")
    alert = f'<p class="error-box" role="alert">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Log in · abflow console</title>
  <link rel="stylesheet" href="{PREFIX}/static/css/console.css">
  <link rel="icon" href="data:,">
</head>
<body data-page="login">
  <header class="topbar"><span class="brand">abflow <span>console</span></span></header>
  <main id="main" class="page page-login">
    <section class="panel login-panel">
      <h1>Log in</h1>
      <p class="muted">Paste an API key with scope <code>read</code> (view) or
      <code>admin</code> (view and run the lifecycle actions). Local stack: the keys are in
      <code>.stack/env</code> (<code>READ_API_KEY</code>, <code>ADMIN_API_KEY</code>).</p>
      {alert}
      <form method="post" action="{LOGIN_PATH}" class="login-form">
        <input type="hidden" name="next" value="{html.escape(next_path)}">
        <label class="field">API key
          <input type="password" name="api_key" id="api-key" autocomplete="off" required></label>
        <label class="field">Your name (audit log, optional)
          <input type="text" name="name" id="user-name" maxlength="100"></label>
        <button type="submit" id="login-button">Log in</button>
      </form>
    </section>
  </main>
</body>
</html>
"""
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


def login_redirect(request: Request, error: str | None = None) -> RedirectResponse:
    target = f"{LOGIN_PATH}?next={quote(request.url.path + ('?' + request.url.query if request.url.query else ''), safe='')}"
    if error:
        target += f"&error={error}"
    return RedirectResponse(target, status_code=303)


@router.get(LOGIN_PATH, response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request) -> HTMLResponse:
    return login_page(
        request.query_params.get("error"), safe_next(request.query_params.get("next"))
    )


@router.post(LOGIN_PATH, response_model=None, include_in_schema=False)  # browser forms
async def login(request: Request) -> Response:
    raw = (await request.body()).decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    key = form.get("api_key", "").strip()
    name = " ".join(form.get("name", "").split())[:100]
    next_path = safe_next(form.get("next"))
    if not key:
        return login_page("missing", next_path, 400)
    ok, why = await upstream_of(request).check_key(key)
    if not ok:
        return login_page(why, next_path, 401 if why in ("unknown", "scope") else 503)
    settings = _settings(request)
    response = RedirectResponse(next_path, status_code=303)
    cookie = {
        "max_age": settings.console_session_hours * 3600,
        "path": PREFIX,
        "httponly": True,
        "samesite": "strict",
        "secure": settings.console_cookie_secure,
    }
    codec: SessionCodec = request.app.state.sessions
    token = codec.seal(key, name or None, settings.console_session_hours * 3600)
    response.set_cookie(SESSION_COOKIE, token, **cookie)  # type: ignore[arg-type]
    for old in _OLD_COOKIES:  # from before sessions were sealed: the raw key
        response.delete_cookie(old, path=PREFIX)
    return response


@router.post(f"{PREFIX}/logout", include_in_schema=False)
async def logout() -> RedirectResponse:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    for name in (SESSION_COOKIE, *_OLD_COOKIES):
        response.delete_cookie(name, path=PREFIX, httponly=True, samesite="strict")
    return response
