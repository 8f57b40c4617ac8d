"""`make scan`: a live Custodia with two businesses, attacked by external scanners.

The runner starts a throwaway instance (its own embedded PostgreSQL, TLS certificate and secrets
under scan/reports/instance), seeds two businesses, logs in, then runs sslyze, the HTTP
Observatory, sqlmap, schemathesis and wapiti against it, each bounded in time and aimed only at
loopback. It prints one summary table, writes every report under scan/reports/, and exits 1 when
any scanner found something of medium severity or above that scan/allowlist.toml does not excuse
(or when a scanner could not run). Standard library only (and the app's own server launcher,
custodia/testing/launcher.py): it runs under the app's .venv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET  # noqa: S405  # our own scanner's report, on our disk
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custodia.testing import launcher

ROOT = Path(__file__).resolve().parent.parent
SCAN_DIR = ROOT / "scan"
REPORTS = SCAN_DIR / "reports"
INSTANCE = REPORTS / "instance"
ALLOWLIST = SCAN_DIR / "allowlist.toml"
APP_BIN = ROOT / ".venv" / "bin"
SCAN_BIN = ROOT / ".venv-scan" / "bin"
WAPITI_BIN = ROOT / ".venv-scan-wapiti" / "bin"
HOST = "127.0.0.1"

SECOND_BUSINESS = "Sparkle & Shine Cleaning"
SECOND_OWNER = "nadia.cole@example.net"
SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Profile:
    """How hard each scanner works; the quick one fits CI's ten minutes."""

    name: str
    sqlmap_all_targets: bool
    sqlmap_target_seconds: int
    schemathesis_examples: int
    schemathesis_seconds: int
    wapiti_scan_seconds: int
    wapiti_attack_seconds: int
    wapiti_depth: int


QUICK = Profile("quick", False, 90, 10, 150, 150, 20, 4)
FULL = Profile("full", True, 150, 50, 600, 600, 150, 8)


@dataclass(frozen=True)
class Finding:
    """One thing a scanner reported, on its own severity scale mapped to SEVERITIES."""

    scanner: str
    severity: str
    title: str
    detail: str = ""

    @property
    def blocking(self) -> bool:
        """Medium or above fails the scan."""
        return SEVERITIES.index(self.severity) >= SEVERITIES.index("medium")


@dataclass
class Result:
    """What one scanner did: checks run, findings, and whether it ran at all."""

    scanner: str
    checks: str = ""
    findings: list[Finding] = field(default_factory=list)
    allowed: list[tuple[Finding, str]] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """A blocking finding or a scanner that did not run properly."""
        return bool(self.error) or any(finding.blocking for finding in self.findings)


@dataclass
class Instance:
    """The live server and what the scanners need to reach it as real users."""

    port: int
    http_port: int
    env: dict[str, str]
    server: launcher.Server | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """https://127.0.0.1:PORT"""
        return f"https://{HOST}:{self.port}"

    @property
    def ca(self) -> Path:
        """The local CA that signed the server's certificate."""
        return INSTANCE / "tls" / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the local CA."""
        return ssl.create_default_context(cafile=str(self.ca))

    def api(self, method: str, path: str, body: Any = None, *, who: str = "a-owner") -> Any:
        """Call the API as a seeded user; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310  # https to loopback only
            f"{self.origin}/api/v1{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.tokens[who]}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(request, context=self.ssl_context(), timeout=30) as response:  # noqa: S310
            text = response.read().decode()
        return json.loads(text) if text else None

    def cookie_header(self) -> str:
        """The logged-in browser's cookies as one Cookie header value."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())


# --- the instance -----------------------------------------------------------------------------


def port_free(port: int) -> bool:
    """Whether nothing listens on loopback `port` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def choose_ports() -> tuple[int, int]:
    """8443/8080 as the issue asks when both are free, otherwise two free ports."""
    if port_free(8443) and port_free(8080):
        return 8443, 8080
    https = free_port()
    plain = free_port()
    while plain == https:
        plain = free_port()
    return https, plain


def custodia(instance: Instance, *args: str, timeout: int = 300) -> str:
    """Run `custodia ...` against the scan instance; its standard output."""
    completed = subprocess.run(  # noqa: S603
        [str(APP_BIN / "custodia"), *args],
        env=instance.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"custodia {args[0]} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


def stop_database(env: dict[str, str]) -> None:
    """Stop the instance's embedded PostgreSQL if it runs (it outlives `custodia` commands)."""
    pgdata = INSTANCE / "pgdata"
    if not pgdata.exists():
        return
    subprocess.run(  # noqa: S603
        [
            str(APP_BIN / "python"),
            "-c",
            "import pathlib, sys; from custodia.embedded import stop_embedded; "
            "stop_embedded(pathlib.Path(sys.argv[1]))",
            str(pgdata),
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def prepare_instance() -> Instance:
    """A fresh instance directory, database and demo business; ports chosen."""
    port, http_port = choose_ports()
    env = {
        **os.environ,
        "CUSTODIA_VAR_DIR": str(INSTANCE),
        "CUSTODIA_PUBLIC_URL": f"https://{HOST}:{port}",
        "CUSTODIA_ENV": "development",
        "CUSTODIA_DEBUG": "false",
        "CUSTODIA_LOG_LEVEL": "WARNING",
        # schemathesis sends hundreds of requests a minute on one token: at the default API
        # rate limit most would be 429s (tests/api/test_ratelimit.py attacks the limit itself).
        "CUSTODIA_API_RATE_LIMIT": "1000000",
    }
    for name in ("DATABASE_URL", "CUSTODIA_DB_NAME"):
        env.pop(name, None)  # always the instance's own embedded database
    stop_database(env)
    if INSTANCE.exists():
        shutil.rmtree(INSTANCE)
    INSTANCE.mkdir(parents=True)
    instance = Instance(port=port, http_port=http_port, env=env)
    try:
        seed_instance(instance)
    except BaseException:
        stop_database(env)  # the embedded server outlives `custodia setup`
        raise
    return instance


def seed_instance(instance: Instance) -> None:
    """The demo business, the second business's owner, and API tokens for three people."""
    log("setting up the instance (embedded PostgreSQL, TLS, demo business)")
    custodia(instance, "setup", "--demo", timeout=600)
    for line in (INSTANCE / "demo-credentials.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and "@" in parts[0]:
            instance.credentials[f"a-{parts[2]}"] = (parts[0], parts[1])
    password = secrets.token_urlsafe(18)
    password_file = INSTANCE / "second-owner-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    custodia(
        instance,
        "createbusiness",
        "--name",
        SECOND_BUSINESS,
        "--owner-email",
        SECOND_OWNER,
        "--password-file",
        str(password_file),
    )
    instance.credentials["b-owner"] = (SECOND_OWNER, password)
    for who in ("a-owner", "a-staff", "b-owner"):
        email = instance.credentials[who][0]
        output = custodia(
            instance, "token", "create", "--email", email, "--days", "1", "--name", "scan"
        )
        instance.tokens[who] = output.strip().splitlines()[-1].strip()


def start_server(instance: Instance) -> None:
    """`custodia serve` on loopback; returns once it answers over TLS."""
    log(f"serving {instance.origin} (and http://{HOST}:{instance.http_port})")
    instance.server = launcher.start(
        instance.env,
        ca=instance.ca,
        port=instance.port,
        http_port=instance.http_port,
        host=HOST,
        serve_args=("--workers", "2"),
        command=(str(APP_BIN / "custodia"),),
        log=REPORTS / "server.log",
        ready_path="/",
        timeout_seconds=90,
    )


def stop_server(instance: Instance) -> None:
    """Stop the server group we started, then the database."""
    if instance.server is not None:
        instance.server.stop(grace_seconds=20)
    stop_database(instance.env)


def seed_second_business(instance: Instance) -> None:
    """Real data for the second business, through its owner's API token."""
    services = [
        instance.api("POST", "/services", body, who="b-owner")
        for body in (
            {"name": "Regular clean", "duration_minutes": 120, "price_cents": 6000},
            {"name": "Deep clean", "duration_minutes": 240, "price_cents": 14000},
        )
    ]
    people = [
        ("Ruth Alvarez", "ruth.alvarez@example.net", "+1 555 0201", "3 Birch Lane", "4410"),
        ("Sam Whitaker", "sam.whitaker@example.net", "+1 555 0202", "77 Harbour Road", "9031"),
        ("Ines Duarte", "ines.duarte@example.net", "+1 555 0203", "5 Quarry Close", "2468"),
    ]
    clients = [
        instance.api(
            "POST",
            "/clients",
            {
                "name": name,
                "email": email,
                "phone": phone,
                "address": address,
                "notes": "Two cats; keep the bedroom door closed.",
                "instructions": "Key with the concierge.",
                "door_code": code,
                "alarm_code": code[::-1],
            },
            who="b-owner",
        )
        for name, email, phone, address, code in people
    ]
    start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    for day, (client, service) in enumerate(zip(clients, services * 2, strict=False), start=1):
        instance.api(
            "POST",
            "/visits",
            {
                "client_id": client["id"],
                "service_id": service["id"],
                "starts_at": (start + dt.timedelta(days=day, hours=1)).isoformat(),
            },
            who="b-owner",
        )
    # (No pending staff invitation: inviting a member needs a fresh step-up, which an API token
    # never has.)


def log_in(instance: Instance, who: str = "a-owner") -> None:
    """A real browser-style login through the allauth form; keeps the cookies."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=instance.ssl_context()),
        urllib.request.HTTPCookieProcessor(jar),
    )
    login_url = f"{instance.origin}/accounts/login/"
    with opener.open(login_url, timeout=30) as response:
        page = response.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("no CSRF token on the login page")
    email, password = instance.credentials[who]
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": match.group(1), "login": email, "password": password}
    ).encode()
    request = urllib.request.Request(  # noqa: S310
        login_url, data=form, headers={"Referer": login_url, "Origin": instance.origin}
    )
    with opener.open(request, timeout=30) as response:
        if "/accounts/login" in response.url:
            raise RuntimeError("the scan login was refused")
    instance.cookies = {cookie.name: cookie.value or "" for cookie in jar}
    if "__Host-sessionid" not in instance.cookies:
        raise RuntimeError("no session cookie after logging in")


# --- running scanners ---------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress on stderr, so the summary table stays the only thing on stdout."""
    sys.stderr.write(f"[scan {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def run_tool(
    command: Sequence[str], *, timeout: int, name: str, env: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """Run a scanner with a hard time limit; (exit code or None on timeout, combined output).

    The output also goes to scan/reports/<name>.log.
    """
    with (REPORTS / f"{name}.log").open("w", encoding="utf-8") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        process = subprocess.Popen(  # noqa: S603
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or os.environ.copy(),
            start_new_session=True,
            cwd=REPORTS,
        )
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            code = None
    return code, (REPORTS / f"{name}.log").read_text(encoding="utf-8", errors="replace")


def scanner_env() -> dict[str, str]:
    """The environment for scanners: no proxies (everything stays on loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = "*"
    return env


# sslyze -----------------------------------------------------------------------------------------


def scan_sslyze(instance: Instance, profile: Profile) -> Result:
    """TLS configuration against Mozilla's intermediate profile."""
    result = Result("sslyze")
    out = REPORTS / "sslyze.json"
    code, output = run_tool(
        [
            str(SCAN_BIN / "sslyze"),
            "--mozilla_config=intermediate",
            f"--json_out={out}",
            f"{HOST}:{instance.port}",
        ],
        timeout=300,
        name="sslyze",
        env=scanner_env(),
    )
    if code is None:
        result.error = "timed out"
        return result
    report = json.loads(out.read_text()) if out.exists() else {}
    commands = 0
    for server in report.get("server_scan_results", []):
        if server.get("scan_status") != "COMPLETED":
            result.error = f"scan status {server.get('scan_status')}"
        for attempt in (server.get("scan_result") or {}).values():
            if isinstance(attempt, dict) and attempt.get("status") == "COMPLETED":
                commands += 1
    result.checks = f"{commands} TLS probes, Mozilla intermediate"
    section = output.split("COMPLIANCE AGAINST", 1)
    if len(section) < 2:
        result.error = result.error or "no Mozilla compliance section in the output"
        return result
    for line in section[1].splitlines():
        line = line.strip()
        # Each problem is "* <check>: <why>" under "FAILED - Not compliant."
        if line.startswith("* "):
            result.findings.append(Finding("sslyze", "medium", line[2:]))
    return result


# HTTP Observatory ------------------------------------------------------------------------------


def scan_httpobs(instance: Instance, profile: Profile) -> Result:
    """Mozilla HTTP Observatory grading, run locally; the score must reach 100."""
    result = Result("httpobs")
    env = {**scanner_env(), "REQUESTS_CA_BUNDLE": str(instance.ca)}
    # The logged-in page gets its cookies as a header: cookies handed to httpobs' own jar lack
    # the attributes the server sets, and it would grade those instead of the server's.
    pages = [("home", "/", None), ("app", "/app/", instance.cookie_header())]
    tests = 0
    for label, path, cookies in pages:
        command = [
            str(SCAN_BIN / "httpobs-local-scan"),
            "--https-port",
            str(instance.port),
            "--http-port",
            str(instance.http_port),
            "--path",
            path,
            "--format",
            "json",
        ]
        if cookies:
            command += ["--headers", json.dumps({"Cookie": cookies})]
        code, output = run_tool([*command, HOST], timeout=120, name=f"httpobs-{label}", env=env)
        if code is None:
            result.error = "timed out"
            return result
        try:
            report = json.loads(output[output.index("\n{") :])
        except ValueError:
            result.error = f"unreadable output for {path}"
            return result
        (REPORTS / f"httpobs-{label}.json").write_text(json.dumps(report, indent=2))
        score = int(report.get("scan", {}).get("score", 0))
        grade = report.get("scan", {}).get("grade", "?")
        tests += len(report.get("tests", {}))
        for name, test in sorted(report.get("tests", {}).items()):
            if int(test.get("score_modifier", 0)) < 0:
                result.findings.append(
                    Finding(
                        "httpobs",
                        "medium",
                        f"{path} {name}: {test.get('result')}",
                        str(test.get("score_description", "")),
                    )
                )
        if score < 100:
            result.findings.append(Finding("httpobs", "medium", f"{path} score {score} ({grade})"))
        result.checks += f"{path} {score}/{grade} "
    result.checks = f"{tests} tests; " + result.checks.strip()
    return result


# sqlmap ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlTarget:
    """One sqlmap run: a URL (with `*` marking path injection points), a method, maybe a body."""

    label: str
    url: str
    method: str = "GET"
    body: str | None = None
    headers: tuple[str, ...] = ()
    quick: bool = False


def example_value(name: str, schema: dict[str, Any], ids: dict[str, str]) -> Any:
    """A plausible value for a parameter, real ids for references."""
    schema = schema.get("anyOf", [schema])[0] if "anyOf" in schema else schema
    if name in ids:
        return ids[name]
    kind = schema.get("type", "string")
    if "enum" in schema:
        return schema["enum"][0]
    if name == "limit":
        return 10  # a page that holds the seeded rows
    if name == "cursor":
        return ""  # the first page (a made-up cursor is a 400 before any query)
    if kind == "integer":
        return 30
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time" or name in {"start", "end", "starts_at", "ends_at"}:
        return (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:00:00Z")
    if name == "email":
        return "scan.target@example.org"
    if name == "role":
        return "staff"
    return "scan"


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref."""
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def sqlmap_targets(instance: Instance) -> list[SqlTarget]:
    """Every API operation with a parameter (from the live OpenAPI document), plus the search form.

    DELETE operations are left out: their path ids go through the same lookup as GET/PATCH on the
    same path, and a successful DELETE would remove the data the other scanners need.
    """
    with urllib.request.urlopen(  # noqa: S310
        f"{instance.origin}/api/v1/openapi.json", context=instance.ssl_context(), timeout=30
    ) as response:
        spec = json.load(response)

    def first_id(path: str) -> str:
        page = instance.api("GET", f"{path}?limit=1")
        return str((page["items"] if isinstance(page, dict) else page)[0]["id"])

    staff = first_id("/staff")
    ids = {
        "client_id": first_id("/clients"),
        "service_id": first_id("/services"),
        "visit_id": first_id("/visits"),
        "staff_id": staff,
        "membership_id": staff,
    }
    bearer = f"Authorization: Bearer {instance.tokens['a-owner']}"
    quick_labels = {"GET /clients", "POST /clients", "GET /visits", "PATCH /visits/{visit_id}"}
    targets = [
        SqlTarget(
            "web client search",
            f"{instance.origin}/app/clients/?q=hannah",
            headers=(f"Cookie: {instance.cookie_header()}",),
            quick=True,
        )
    ]
    for path, operations in sorted(spec["paths"].items()):
        for method, operation in sorted(operations.items()):
            if method.upper() == "DELETE":
                continue
            label = f"{method.upper()} {path.removeprefix('/api/v1')}"
            url_path = path
            query: dict[str, Any] = {}
            for parameter in operation.get("parameters", []):
                parameter = resolve(spec, parameter)
                value = example_value(parameter["name"], parameter.get("schema", {}), ids)
                if parameter["in"] == "path":
                    url_path = url_path.replace("{" + parameter["name"] + "}", f"{value}*")
                elif parameter["in"] == "query":
                    query[parameter["name"]] = value
            body = None
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = resolve(spec, content["application/json"]["schema"])
                body = json.dumps(
                    {
                        name: example_value(name, resolve(spec, prop), ids)
                        for name, prop in schema.get("properties", {}).items()
                        if name != "note"  # owners may not send a client's note
                    }
                )
            if url_path == path and not query and body is None:
                continue  # nothing to inject into
            url = instance.origin + url_path
            if query:
                url += "?" + urllib.parse.urlencode(query)
            targets.append(
                SqlTarget(
                    label,
                    url,
                    method.upper(),
                    body,
                    (bearer, "Content-Type: application/json"),
                    quick=label in quick_labels,
                )
            )
    return targets


def scan_sqlmap(instance: Instance, profile: Profile) -> Result:
    """sqlmap --batch --level 2 on every API parameter and the search form."""
    result = Result("sqlmap")
    targets = sqlmap_targets(instance)
    chosen = [t for t in targets if profile.sqlmap_all_targets or t.quick]
    tested = 0
    for index, target in enumerate(chosen):
        log(f"  sqlmap {target.label}")
        command = [
            str(SCAN_BIN / "sqlmap"),
            "-u",
            target.url,
            "--method",
            target.method,
            "--batch",
            "--level",
            "2",
            "--dbms",
            "PostgreSQL",
            "--flush-session",
            "--disable-coloring",
            "--timeout",
            "15",
            "--retries",
            "1",
            "--output-dir",
            str(REPORTS / "sqlmap"),
        ]
        for header in target.headers:
            command += ["-H", header]
        if target.body is not None:
            command += ["--data", target.body]
        if target.label.startswith("web"):
            # Injecting into the session cookie only logs the scanner out; test the form field.
            command += ["-p", "q"]
        code, output = run_tool(
            command,
            timeout=profile.sqlmap_target_seconds,
            name=f"sqlmap-{index:02d}",
            env=scanner_env(),
        )
        if code is None:
            result.findings.append(
                Finding("sqlmap", "info", f"{target.label}: stopped at the time limit")
            )
        tested += len(set(re.findall(r"SQL injection on \S+ parameter '([^']+)'", output))) or 1
        if re.search(
            r"identified the following injection point|parameter '[^']+' is vulnerable", output
        ):
            result.findings.append(
                Finding("sqlmap", "high", f"{target.label}: injectable", target.url)
            )
        errors = re.search(r"500 \(Internal Server Error\) - (\d+) times", output)
        if errors:
            result.findings.append(
                Finding(
                    "sqlmap", "medium", f"{target.label}: {errors.group(1)} server errors (500)"
                )
            )
        if (
            "all tested parameters do not appear to be injectable" not in output
            and code is not None
        ):
            if not re.search(r"identified the following injection point", output):
                tail = " ".join(output.strip().splitlines()[-3:])[:300]
                result.findings.append(
                    Finding("sqlmap", "medium", f"{target.label}: inconclusive run", tail)
                )
    result.checks = f"{len(chosen)}/{len(targets)} targets, {tested} parameters, level 2"
    return result


# schemathesis ---------------------------------------------------------------------------------


def schemathesis_findings(junit: Path) -> tuple[list[ET.Element], list[Finding]]:
    """The test cases of a schemathesis JUnit report and one finding per failed check."""
    result = Result("schemathesis")
    suite = ET.parse(junit).getroot()  # noqa: S314  # our own scanner's report
    cases = list(suite.iter("testcase"))
    for case in cases:
        for failure in [*case.findall("failure"), *case.findall("error")]:
            text = failure.text or failure.get("message") or failure.tag
            # One block per failing test case: its checks ("- ST202 ...") and the answer body.
            for block in re.split(r"^\d+\. Test Case ID: \w+$", text, flags=re.M):
                checks = re.findall(r"^- (ST\d+ [^\n]+)$", block, re.M)
                answer = re.search(r"^\[(\d+)\][^\n]*\n\n\s*`([^`\n]*)`", block, re.M)
                said = f" -> {answer.group(1)} {answer.group(2)[:300]}" if answer else ""
                for check in checks:
                    result.findings.append(
                        Finding("schemathesis", "high", f"{case.get('name')}: {check}{said}")
                    )
            if not re.search(r"^- ST\d+", text, re.M):
                first = text.strip().splitlines()[0] if text.strip() else failure.tag
                result.findings.append(
                    Finding("schemathesis", "high", f"{case.get('name')}: {first}")
                )
    return cases, result.findings


def scan_schemathesis(instance: Instance, profile: Profile) -> Result:
    """Every schemathesis check, authenticated, two businesses as object-level peers."""
    result = Result("schemathesis")
    workdir = REPORTS / "schemathesis"
    workdir.mkdir(exist_ok=True)
    wfc = {
        "auth": [
            {
                "name": who,
                "fixedHeaders": [
                    {"name": "Authorization", "value": f"Bearer {instance.tokens[who]}"}
                ],
            }
            for who in ("a-owner", "b-owner")
        ]
    }
    (workdir / "wfc-auth.json").write_text(json.dumps(wfc, indent=2))
    (workdir / "wfc-auth.json").chmod(0o600)
    config = SCAN_DIR / "schemathesis.toml"
    text = config.read_text().replace("@WFC@", str(workdir / "wfc-auth.json"))
    (workdir / "schemathesis.toml").write_text(text)
    junit = workdir / "junit.xml"
    code, output = run_tool(
        [
            str(SCAN_BIN / "st"),
            "--config-file",
            str(workdir / "schemathesis.toml"),
            "run",
            f"{instance.origin}/api/v1/openapi.json",
            "--checks",
            "all",
            "--tls-verify",
            str(instance.ca),
            "--max-examples",
            str(profile.schemathesis_examples),
            "--max-time",
            str(profile.schemathesis_seconds),
            "--seed",
            "20261123",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
            "--no-color",
        ],
        timeout=profile.schemathesis_seconds + 240,
        name="schemathesis",
        env=scanner_env(),
    )
    if code is None:
        result.error = "timed out"
    if not junit.exists():
        result.error = result.error or "no JUnit report"
        return result
    cases, findings = schemathesis_findings(junit)
    result.findings.extend(findings)
    summary = re.search(r"(\d+) generated", output)
    result.checks = f"{len(cases)} operations, all checks" + (
        f", {summary.group(1)} cases" if summary else ""
    )
    if code not in (0, 1, None):
        result.error = result.error or f"exit {code}"
    return result


# wapiti ----------------------------------------------------------------------------------------

WAPITI_MODULES = "sql,xss,exec,file,redirect,crlf,csrf,http_headers,cookieflags,csp"


class SinkHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with an empty 200: the endpoint wapiti's out-of-band modules call."""

    def do_GET(self) -> None:  # noqa: N802  # the name http.server dispatches to
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


def loopback_sink() -> http.server.ThreadingHTTPServer:
    """A throwaway HTTP server on loopback; wapiti insists its endpoints answer."""
    server = http.server.ThreadingHTTPServer((HOST, 0), SinkHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# wapiti rules that look for one short marker in the answer, and the marker. A page that echoes
# the submitted form (as every Django form with an error does) trips them whenever wapiti's own
# random value for another field happens to contain the marker: then the finding is the echo.
ECHO_PRONE_RULES = {"PHP local inclusion leading to code execution": "\u00b8"}
WAPITI_LEVELS = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}


def wapiti_findings(report: dict[str, Any]) -> list[Finding]:
    """One finding per wapiti vulnerability or anomaly, at wapiti's level.

    A finding of an echo-prone rule whose marker was already in the request's own values is
    kept, at level "info", with the reason: the answer only repeated what was sent.
    """
    findings = []
    for section in ("vulnerabilities", "anomalies"):
        for category, items in sorted(report.get(section, {}).items()):
            for item in items:
                severity = WAPITI_LEVELS.get(int(item.get("level", 2)), "medium")
                title = f"{category}: {item.get('method', '')} {item.get('path', '')}"
                if item.get("parameter"):
                    title += f" [{item['parameter']}]"
                info = str(item.get("info", ""))
                sent = urllib.parse.unquote_plus(str(item.get("http_request", "")))
                for rule, marker in ECHO_PRONE_RULES.items():
                    if rule in info and marker in sent:
                        severity = "info"
                        info += (
                            f" (echo: the rule's marker {marker!r} was in the request's own"
                            " values, and the page re-renders the submitted form)"
                        )
                findings.append(Finding("wapiti", severity, title, info))
    return findings


def scan_wapiti(instance: Instance, profile: Profile) -> Result:
    """wapiti crawls the logged-in web UI and attacks it."""
    result = Result("wapiti")
    sink_server = loopback_sink()
    sink = f"http://{HOST}:{sink_server.server_address[1]}/"
    try:
        return _scan_wapiti(instance, profile, result, sink)
    finally:
        sink_server.shutdown()
        sink_server.server_close()


def _scan_wapiti(instance: Instance, profile: Profile, result: Result, sink: str) -> Result:
    out = REPORTS / "wapiti.json"
    origin = instance.origin
    # Links that would end or weaken the scanner's own session, or revoke the scan's tokens.
    excluded = [
        f"{origin}/accounts/logout/*",
        f"{origin}/accounts/password/*",
        f"{origin}/accounts/email/*",
        f"{origin}/app/tokens/*/revoke/*",
        f"{origin}/app/staff/*/role/*",
        f"{origin}/app/staff/*/remove/*",
        f"{origin}/app/switch/*",
        f"{origin}/api/*",
    ]
    command = [
        str(WAPITI_BIN / "wapiti"),
        "-u",
        f"{origin}/",
        "-s",
        f"{origin}/app/",
        "--scope",
        "domain",
        "-m",
        WAPITI_MODULES,
        "-C",
        instance.cookie_header(),
        "--verify-ssl",
        "0",
        "--flush-session",
        "--store-session",
        str(REPORTS / "wapiti-session"),
        "--store-config",
        str(REPORTS / "wapiti-config"),
        "--max-scan-time",
        str(profile.wapiti_scan_seconds),
        "--max-attack-time",
        str(profile.wapiti_attack_seconds),
        "-d",
        str(profile.wapiti_depth),
        "--tasks",
        "4",
        "--timeout",
        "15",
        # Out-of-band endpoints (ssrf, xxe, log4shell modules, not run here) on loopback, never
        # wapiti's public server.
        "--external-endpoint",
        sink,
        "--internal-endpoint",
        sink,
        "--endpoint",
        sink,
        "--dns-endpoint",
        "localhost",
        "--no-bugreport",
        "-f",
        "json",
        "-o",
        str(out),
        "-dr",
        "1",
    ]
    for url in excluded:
        command += ["-x", url]
    code, _output = run_tool(
        command, timeout=profile.wapiti_scan_seconds + 300, name="wapiti", env=scanner_env()
    )
    if code is None:
        result.error = "timed out"
    if not out.exists():
        result.error = result.error or "no report"
        return result
    report = json.loads(out.read_text())
    result.findings.extend(wapiti_findings(report))
    crawled = report.get("infos", {}).get("crawled_pages_nbr") or len(
        report.get("infos", {}).get("crawled_pages", [])
    )
    result.checks = f"{len(WAPITI_MODULES.split(','))} modules, {crawled} pages crawled"
    return result


# --- allow-list and summary ---------------------------------------------------------------------


def load_allowlist() -> list[dict[str, str]]:
    """Entries {scanner, match, reason}; each must say why the finding is not a problem."""
    entries = tomllib.loads(ALLOWLIST.read_text()).get("allow", []) if ALLOWLIST.exists() else []
    for entry in entries:
        if not entry.get("reason", "").strip():
            raise SystemExit(f"{ALLOWLIST}: entry {entry.get('match')!r} has no reason")
    return entries


def apply_allowlist(result: Result, entries: list[dict[str, str]]) -> None:
    """Move findings an entry matches (regex on the title) to `allowed`, with its reason."""
    kept = []
    for finding in result.findings:
        reason = next(
            (
                entry["reason"]
                for entry in entries
                if entry["scanner"] == finding.scanner and re.search(entry["match"], finding.title)
            ),
            None,
        )
        if reason is None:
            kept.append(finding)
        else:
            result.allowed.append((finding, reason))
    result.findings = kept


def summary_table(results: list[Result]) -> str:
    """One table: scanner, checks run, findings (blocking / below medium / allow-listed)."""
    rows = [("scanner", "checks run", "findings", "status", "time")]
    for result in results:
        blocking = sum(f.blocking for f in result.findings)
        minor = len(result.findings) - blocking
        findings = f"{blocking} medium+, {minor} lower, {len(result.allowed)} allowed"
        status = f"ERROR: {result.error}" if result.error else ("FAIL" if result.failed else "pass")
        rows.append((result.scanner, result.checks, findings, status, f"{result.seconds:.0f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def details(results: list[Result]) -> str:
    """Every finding, blocking first, then the allow-listed ones with their reasons."""
    lines = []
    for result in results:
        for finding in sorted(result.findings, key=lambda f: -SEVERITIES.index(f.severity)):
            lines.append(f"[{finding.severity}] {finding.scanner}: {finding.title}")
            if finding.detail:
                lines.append(f"    {finding.detail[:400]}")
        for finding, reason in result.allowed:
            lines.append(f"[allowed] {finding.scanner}: {finding.title}\n    reason: {reason}")
    return "\n".join(lines)


SCANNERS: dict[str, Callable[[Instance, Profile], Result]] = {
    "sslyze": scan_sslyze,
    "httpobs": scan_httpobs,
    "sqlmap": scan_sqlmap,
    "schemathesis": scan_schemathesis,
    "wapiti": scan_wapiti,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen profile; 0 when nothing of medium severity or above remains."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="the full profile (default: quick)")
    parser.add_argument(
        "--only", help=f"comma-separated scanners to run (default all: {', '.join(SCANNERS)})"
    )
    options = parser.parse_args(argv)
    profile = FULL if options.full else QUICK
    chosen = options.only.split(",") if options.only else list(SCANNERS)
    unknown = set(chosen) - set(SCANNERS)
    if unknown:
        parser.error(f"unknown scanner(s): {', '.join(sorted(unknown))}")
    for tool in (SCAN_BIN / "sslyze", WAPITI_BIN / "wapiti", APP_BIN / "custodia"):
        if not tool.exists():
            parser.error(f"{tool} is missing: run `make scan` (it installs the scanners)")
    REPORTS.mkdir(parents=True, exist_ok=True)
    for old in REPORTS.glob("*.log"):
        old.unlink()
    allowlist = load_allowlist()
    # A `timeout` around `make scan` sends SIGTERM: unwind, so the server and database stop.
    signal.signal(
        signal.SIGTERM, lambda signum, frame: sys.exit(f"scan stopped by signal {signum}")
    )
    started = time.monotonic()
    instance = prepare_instance()
    results: list[Result] = []
    try:
        start_server(instance)
        seed_second_business(instance)
        log_in(instance)
        for name in chosen:
            log(f"running {name} ({profile.name} profile)")
            began = time.monotonic()
            try:
                result = SCANNERS[name](instance, profile)
            except Exception as exc:  # a scanner that crashed is a failed scan, reported as such
                result = Result(name, error=f"{type(exc).__name__}: {exc}"[:200])
            result.seconds = time.monotonic() - began
            apply_allowlist(result, allowlist)
            results.append(result)
            if instance.server is not None and instance.server.process.poll() is not None:
                raise RuntimeError(f"the server died during {name}; see scan/reports/server.log")
    finally:
        stop_server(instance)
    table = summary_table(results)
    findings = details(results)
    elapsed = time.monotonic() - started
    report = f"{table}\n\n{findings}\n\n{profile.name} profile, {elapsed:.0f} s\n"
    (REPORTS / "summary.txt").write_text(report)
    (REPORTS / "summary.json").write_text(
        json.dumps(
            [
                {
                    "scanner": r.scanner,
                    "checks": r.checks,
                    "error": r.error,
                    "seconds": round(r.seconds),
                    "findings": [f.__dict__ for f in r.findings],
                    "allowed": [{**f.__dict__, "reason": why} for f, why in r.allowed],
                }
                for r in results
            ],
            indent=2,
        )
    )
    print(report)
    failed = [r.scanner for r in results if r.failed]
    if failed:
        print(f"scan failed: {', '.join(failed)} (reports in scan/reports/)")
        return 1
    print("scan passed: no finding of medium severity or above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
