"""The benchmark harness: servers, load generation with wrk, results and their ratios."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custodia.testing import launcher

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DB_NAME = "custodia_bench"
OWNER_EMAIL = "owner@bench-target.invalid"
PYTHON = sys.executable
WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
wrk.method = "%(method)s"
%(setup)s
-- Each wrk thread has its own Lua state: done() adds up their counters.
local threads = {}
setup = function(thread) table.insert(threads, thread) end
unexpected = 0
response = function(status, headers, body)
  if status ~= %(expect)d then unexpected = unexpected + 1 end
end
request = function()
  i = i %% #paths + 1
  return wrk.format(nil, paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  local unexpected = 0
  for _, thread in ipairs(threads) do unexpected = unexpected + thread:get("unexpected") end
  io.write(string.format(
    '\\nJSON{"unexpected":%%d,"requests":%%d,"duration_us":%%d,"errors":%%d,"status_errors":%%d,'
    .. '"p50_ms":%%.3f,"p90_ms":%%.3f,"p99_ms":%%.3f,"mean_ms":%%.3f}\\n',
    unexpected, summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000))
end
"""


@dataclass(frozen=True)
class Profile:
    name: str
    seconds: int
    target_clients: int
    small_businesses: int
    large_businesses: int
    clients_per_business: int


QUICK = Profile("quick", 6, 50_000, 10, 1_000, 150)
FULL = Profile("full", 15, 200_000, 10, 10_000, 180)
SMOKE = Profile("smoke", 2, 2_000, 3, 20, 50)  # checks the harness itself, measures nothing


@dataclass
class Row:
    scenario: str
    figure: str
    measured: float
    baseline: float
    ratio: float
    target: str
    passed: bool


@dataclass
class Bench:
    profile: Profile
    env: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    def record(
        self,
        scenario: str,
        figure: str,
        measured: float,
        baseline: float,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
    ) -> None:
        ratio = measured / baseline if baseline else float("inf")
        if at_most is not None:
            target, passed = f"<= {at_most}", ratio <= at_most
        elif at_least is not None:
            target, passed = f">= {at_least}", ratio >= at_least
        else:  # a figure reported without a target
            target, passed = "-", True
        self.rows.append(Row(scenario, figure, measured, baseline, ratio, target, passed))
        self.results.setdefault(scenario, {}).setdefault("figures", []).append(
            {
                "figure": figure,
                "measured": measured,
                "baseline": baseline,
                "ratio": ratio,
                "target": target,
                "passed": passed,
            }
        )


# --- Processes --------------------------------------------------------------------------------


def custodia(env: dict[str, str], *args: str, timeout: int = 1800) -> str:
    """Run a `custodia` command; its stdout."""
    done = subprocess.run(  # noqa: S603
        [PYTHON, "-m", "custodia.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if done.returncode:
        raise RuntimeError(f"custodia {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def python_json(env: dict[str, str], *args: str, timeout: int) -> Any:
    """Run `python ARGS` with Django's settings from `env`; the JSON of its last output line."""
    done = subprocess.run(  # noqa: S603
        [PYTHON, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def server(env: dict[str, str], **extra: str) -> Iterator[str]:
    """`custodia serve` (granian, 2 workers, its default threads, TLS) on a free port; yields
    its URL."""
    port = launcher.free_port()
    url = f"https://localhost:{port}"
    running = launcher.start(
        {**env, "CUSTODIA_PUBLIC_URL": url, **extra},
        ca=local_ca(),
        port=port,
        serve_args=(
            "--workers",
            "2",
            # The daily checkpoint would verify whole chains beside the measured load.
            "--no-audit-maintenance",
            "--no-key-maintenance",
            # Nor a backup at start beside the first measured runs.
            "--no-backups",
            # Nor a card vault: no scenario of the app's pages calls it, and its process would
            # take a share of the two cores (the vault's own scenarios start one of their own).
            "--no-vault",
        ),
        ready_path="/security/",
        timeout_seconds=60,
        cwd=ROOT,
    )
    try:
        yield url
    finally:
        running.stop(grace_seconds=10)


def local_ca() -> Path:
    """The local CA that signed the server's certificate."""
    return Path(os.environ.get("CUSTODIA_VAR_DIR", ROOT / "var")) / "tls" / "ca.pem"


def tls_context() -> ssl.SSLContext:
    """Trusts the local CA that signed the server's certificate."""
    return ssl.create_default_context(cafile=str(local_ca()))


def fetch(url: str) -> bytes:
    """GET over TLS with the local CA."""
    with urllib.request.urlopen(url, context=tls_context(), timeout=10) as response:  # noqa: S310
        return response.read()


@dataclass(frozen=True)
class LoginForm:
    csrf_cookie: str
    csrf_token: str


def login_form(url: str) -> tuple[LoginForm, urllib.request.OpenerDirector, Any]:
    """The login page's CSRF cookie and token (reusable for many POSTs), and a cookie opener."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar), urllib.request.HTTPSHandler(context=tls_context())
    )
    page = opener.open(url + "/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    cookie = next((c.value for c in jar if c.name == "__Host-csrftoken"), None)
    if token is None or cookie is None:
        raise RuntimeError("login page without a CSRF token")
    return LoginForm(cookie, token.group(1)), opener, jar


def session_cookie(url: str, password: str) -> str:
    """Log in as the target owner through the real form; the session cookie header."""
    form, opener, jar = login_form(url)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": form.csrf_token, "login": OWNER_EMAIL, "password": password}
    ).encode()
    request = urllib.request.Request(  # noqa: S310
        url + "/accounts/login/", data=body, headers={"Referer": url + "/accounts/login/"}
    )
    opener.open(request, timeout=30).read()
    session = next((c.value for c in jar if c.name == "__Host-sessionid"), None)
    if session is None:
        raise RuntimeError("login did not give a session")
    return f"__Host-sessionid={session}"


def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs of the same load, one figure: the mean rate and percentiles, the summed counts.

    On this shared machine speed drifts by a tenth or more within minutes; measuring the two
    sides of a ratio in mirrored order (A B B A) and taking each side's mean puts the drift on
    both (scenarios 1, 6 and 8)."""
    merged: dict[str, Any] = {"runs": len(runs)}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        total = sum(run[key] for run in runs)
        merged[key] = total if isinstance(value, int) else total / len(runs)
    return merged


def wrk(
    url: str,
    paths: list[str],
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str = "",
    expect: int = 200,
) -> dict[str, Any]:
    """Run wrk over `paths` (round robin); requests/s and latency percentiles in ms."""
    setup = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    if body:
        setup += f"wrk.body = {json.dumps(body)}\n"
    script = WRK_SCRIPT % {
        "paths": ", ".join(json.dumps(p) for p in paths),
        "method": method,
        "setup": setup,
        "expect": expect,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        done = subprocess.run(  # noqa: S603
            [
                shutil.which("wrk") or "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",  # noqa: S607
                "-s",
                handle.name,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        Path(handle.name).unlink()
    line = next(line for line in done.stdout.splitlines() if line.startswith("JSON"))
    stats = json.loads(line[4:])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    # wrk's request count includes the ones cut short at the end; only expected answers count.
    stats["ok_rps"] = max(0, stats["requests"] - stats["unexpected"]) / (stats["duration_us"] / 1e6)
    if stats["unexpected"] or stats["errors"]:
        stats["warning"] = (
            f"{stats['unexpected']} answers other than {expect}, {stats['errors']} socket errors"
        )
        say(f"warning: {paths[0]}: {stats['warning']}")
    return stats


class StatementCounter:
    """A database execute wrapper counting the statements sent through it (no log, no cap)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def say(message: str) -> None:
    """Progress on stderr, so the table stays clean on stdout."""
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()
