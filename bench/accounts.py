"""Account-security benchmarks: logins with a second factor, and the session middleware's cost.

7. Login throughput with TOTP vs password only: a Python client (the flow needs a fresh code per
   login) logs in as many different users, each once, through the real forms.
8. Requests/s of an authenticated page with Custodia's session-lifetime middleware (idle and
   absolute expiry, session-list tracking) vs the same server settings without it.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from typing import Any

import pyotp

from bench.harness import (
    Bench,
    mean_of,
    python_json,
    say,
    server,
    session_cookie,
    tls_context,
    wrk,
)

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class LoginFailed(Exception):
    pass


def login_users(env: dict[str, str], count: int) -> dict[str, Any]:
    """`count` password-only and `count` TOTP users (bench/login_users.py)."""
    return dict(python_json(env, "-m", "bench.login_users", str(count), timeout=600))


def _form_token(opener: urllib.request.OpenerDirector, url: str) -> str:
    with opener.open(url, timeout=30) as page:
        found = CSRF.search(page.read().decode())
    if found is None:
        raise LoginFailed(f"no form at {url}")
    return found.group(1)


def _post(opener: urllib.request.OpenerDirector, url: str, fields: dict[str, str]) -> str:
    """POST a form; the Location of the redirect it must answer with."""
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=body, headers={"Referer": url})  # noqa: S310
    try:
        with opener.open(request, timeout=30) as answer:
            raise LoginFailed(f"{url} answered {answer.status}, not a redirect")
    except urllib.error.HTTPError as redirect:
        if redirect.code != 302:
            raise LoginFailed(f"{url} answered {redirect.code}") from None
        return str(redirect.headers["Location"])


def log_in(url: str, email: str, password: str, totp_secret: str | None) -> None:
    """One login as a browser does it: the form, the password, then the code if enrolled."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(CookieJar()),
        urllib.request.HTTPSHandler(context=tls_context()),
        _NoRedirect(),
    )
    login = url + "/accounts/login/"
    token = _form_token(opener, login)
    fields = {"csrfmiddlewaretoken": token, "login": email, "password": password}
    where = _post(opener, login, fields)
    if totp_secret is not None:
        if not where.startswith("/accounts/2fa/authenticate/"):
            raise LoginFailed(f"no second-factor step: {where}")
        step = url + where
        code = pyotp.TOTP(totp_secret).now()
        where = _post(
            opener, step, {"csrfmiddlewaretoken": _form_token(opener, step), "code": code}
        )
    if where != "/app/":
        raise LoginFailed(f"login ended at {where}")


def python_logins(
    url: str,
    users: list[tuple[str, str | None]],
    password: str,
    *,
    seconds: float,
    threads: int = 4,
) -> dict[str, Any]:
    """Each user logs in once, `threads` at a time, for at most `seconds`: logins/s, latencies."""
    queue: Iterator[tuple[str, str | None]] = iter(users)
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                user = next(queue, None)
            if user is None:
                return
            started = time.monotonic()
            try:
                log_in(url, user[0], password, user[1])
            except (LoginFailed, OSError) as exc:
                failures.append(str(exc)[:200])
                continue
            latencies.append((time.monotonic() - started) * 1000)

    started = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def percentile(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] if latencies else 0

    if failures:
        say(f"warning: {len(failures)} failed logins, e.g. {failures[0]}")
    return {
        "logins": len(latencies),
        "failures": len(failures),
        "seconds": elapsed,
        "ok_rps": len(latencies) / elapsed,
        "p50_ms": percentile(0.50),
        "p90_ms": percentile(0.90),
        "p99_ms": percentile(0.99),
        "unused_users": len(users) - len(latencies) - len(failures) > 0,
    }


def scenario_7(bench: Bench, url: str, env: dict[str, str], password: str, seconds: int) -> None:
    """Logins/s through the forms: password + TOTP vs password only, different users each time."""
    count = max(200, seconds * 60)  # more users than logins in the run: each logs in once
    users = login_users(env, count)
    plain = [(email, None) for email in users["password"]]
    totp = [(email, secret) for email, secret in users["totp"]]
    without = python_logins(url, plain, password, seconds=seconds)
    with_totp = python_logins(url, totp, password, seconds=seconds)
    name = "7-mfa-login"
    bench.results[name] = {"password only": without, "password and TOTP": with_totp}
    bench.record(name, "logins/s TOTP vs password only", with_totp["ok_rps"], without["ok_rps"])


# Load connections of scenario 8: with 4, all of them sometimes land on one of a server's two
# workers and half its threads idle, a drop that has nothing to do with the middleware (the
# same as scenario 9's); 8 keep both workers' threads busy.
SESSION_CONNECTIONS = 8


def scenario_8(bench: Bench, prod: dict[str, str], password: str, seconds: int) -> None:
    """An authenticated page's req/s with and without the session-lifetime middleware."""
    plain_env = {**prod, "DJANGO_SETTINGS_MODULE": "bench.settings_plain_sessions"}
    with server(prod) as with_url, server(plain_env) as plain_url:
        cookie = {"Cookie": session_cookie(with_url, password)}
        urls = {"with": with_url, "without": plain_url}
        for url in urls.values():
            # Unmeasured: a fresh server's first seconds (imports, pools, statements prepared
            # after five uses) would otherwise fall on whichever side runs first.
            wrk(url, ["/security/"], seconds=2, connections=SESSION_CONNECTIONS, headers=cookie)
        runs: dict[str, list[dict[str, Any]]] = {"with": [], "without": []}
        # Interleaved with, without, without, with: drift on the machine falls on both.
        for side in ("with", "without", "without", "with"):
            runs[side].append(
                wrk(
                    urls[side],
                    ["/security/"],
                    seconds=seconds,
                    connections=SESSION_CONNECTIONS,
                    headers=cookie,
                )
            )
    name = "8-session-middleware"
    bench.results[name] = {
        "runs": {f"{k} {i}": r for k, v in runs.items() for i, r in enumerate(v)}
    }
    with_rps, without_rps = (mean_of(runs[side])["ok_rps"] for side in ("with", "without"))
    bench.record(name, "signed-in page req/s", with_rps, without_rps, at_least=0.95)
