"""Scenarios 17 and 18: the card vault's throughput and the cost of the hop from the app to it.

A vault of the benchmark's own is started the way `custodia serve` starts one beside the app
(`custodia vault serve`, two granian workers, TLS with the local CA, the production settings and
secrets of the bench's servers, the sandbox gateway said on purpose with
`CUSTODIA_VAULT_SANDBOX=true`), on a free port, with a database (`custodia_bench_vault`), a
keystore and a key-encryption key of its own, all removed afterwards. The bench's app servers run
with `--no-vault`, so this is the only vault process.

wrk cannot sign requests (every one carries a fresh nonce and an HMAC over it), so the load comes
from Python processes, each one a `VaultClient` (the app's client) sending one request after
another: the figures are operations per second and latency percentiles like wrk's.

**17** measures, at 4 concurrent clients, in mirrored order (read charge tokenize tokenize charge
read, each side's mean):

- *tokenize*: the whole way a card is added: a signed `POST /v1/forms`, the hosted form's page
  (GET, its CSRF cookie), the card posted to it as a browser without JavaScript would (the card
  rules, the sandbox's zero-amount verification, the number sealed and fingerprinted, a one-time
  reference, the 303 back to the app) and the signed redeem of that reference. Each one a new
  Luhn-valid Visa number, so no card is a duplicate;
- *charge*: a signed `POST /v1/charges` of the saved sandbox card, a new `Idempotency-Key` each
  (the row claimed under its unique constraint and locked, the number opened, the sandbox charged
  through its own connection, the outcome saved);
- the baseline, *signed read*: `GET /v1/cards/<token>` of the same card, the cheapest signed
  request that does real work (the signature verified, its nonce stored, one row read).

**18** is one charge at a time (one client) through `VaultClient` over HTTPS against
`vault.charging.do_charge` called in a loop in a process of the vault's own settings
(`custodia.vault.settings`, the vault's environment: its database, keys and gateway), with the
same card, amount and body digest, mirrored (https in-process in-process https). The ratio of the
milliseconds per charge is what the hop costs: TLS, HTTP, signing, the signature check and its
nonce, JSON both ways, granian.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3

from bench.harness import (
    DB_NAME,
    PYTHON,
    ROOT,
    Bench,
    StatementCounter,
    custodia,
    local_ca,
    mean_of,
    python_json,
    say,
)
from custodia.testing import launcher
from custodia.vault.client import VaultClient, VaultError

VAR = Path(os.environ.get("CUSTODIA_VAR_DIR", ROOT / "var"))
VAULT_DB = f"{DB_NAME}_vault"  # the name `custodia serve`'s launcher gives a bench vault
VAULT_KEYSTORE = VAR / "bench-vault-keys"
VAULT_KEK = VAR / "bench-vault-kek-keyring.json"
# The app's origin the vault trusts (return URLs must be on it); nothing listens there: the
# hosted form's 303 is read, not followed.
APP_ORIGIN = "https://localhost:8443"
RETURN_URL = f"{APP_ORIGIN}/app/payments/cards/added/"
CONNECTIONS = 4
AMOUNT, CURRENCY = 1250, "USD"
START_TIMEOUT_SECONDS = 60
# Targets (docs: bench/README.md, "The card vault").
CHARGE_TARGET = 0.3
TOKENIZE_TARGET = 0.1
HOP_TARGET = 2.0


@dataclass(frozen=True)
class Vault:
    url: str
    secret: str
    ca: str
    env: dict[str, str]


@dataclass(frozen=True)
class Card:
    business: str
    token: str


# --- The vault process -----------------------------------------------------------------------


def _wait_for_tls(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    context = ssl.create_default_context(cafile=str(local_ca()))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the vault exited early:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection((launcher.HOST, port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname=launcher.SERVER_NAME):
                    return
        except (OSError, ssl.SSLError):
            time.sleep(0.2)
    raise RuntimeError(f"the vault did not answer:\n{log.read_text()[-3000:]}")


def _remove_vault_keys() -> None:
    shutil.rmtree(VAULT_KEYSTORE, ignore_errors=True)
    VAULT_KEK.unlink(missing_ok=True)


@contextmanager
def vault_server(prod: dict[str, str]) -> Iterator[Vault]:
    """`custodia vault serve` (granian, 2 workers, TLS) on a free port with the production
    environment of the bench's servers; a fresh database and keys of its own, removed after."""
    port = launcher.free_port()
    url = f"https://{launcher.SERVER_NAME}:{port}"
    env = {
        **prod,
        "CUSTODIA_VAULT_DB_NAME": VAULT_DB,
        "CUSTODIA_VAULT_KEYSTORE_DIR": str(VAULT_KEYSTORE),
        "CUSTODIA_VAULT_KEK_KEYRING_FILE": str(VAULT_KEK),
        "CUSTODIA_VAULT_URL": url,
        "CUSTODIA_PUBLIC_URL": APP_ORIGIN,
    }
    # The role custodia_vault is the database server's, shared with this checkout's own vault
    # (and its tests' vaults), and setting a vault up sets its password: keep theirs.
    password = VAR / "secrets" / "vault_db_password"
    if password.exists():
        env["CUSTODIA_VAULT_DB_PASSWORD"] = password.read_text().strip()
    env.pop("DJANGO_SETTINGS_MODULE", None)  # `custodia vault` sets the vault's own
    _remove_vault_keys()
    custodia(env, "vault", "setup", "--fresh", timeout=300)
    handle, name = tempfile.mkstemp(prefix="custodia-bench-vault-", suffix=".log")
    os.close(handle)
    log = Path(name)
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603  (our own program, arguments built here)
            [PYTHON, "-m", "custodia.cli", "vault", "serve", "--host", launcher.HOST,
             "--port", str(port), "--workers", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )  # fmt: skip
    try:
        _wait_for_tls(port, process, log)
        yield Vault(url, env["CUSTODIA_VAULT_SIGNING_SECRET"], str(local_ca()), env)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.unlink(missing_ok=True)
        _drop_vault_database(prod)
        _remove_vault_keys()


def _drop_vault_database(env: dict[str, str]) -> None:
    code = (
        "import django; django.setup()\n"
        "from custodia.cli import start_embedded_database; start_embedded_database()\n"
        "from django.conf import settings\n"
        "from custodia import embedded\n"
        f"embedded.drop_database(settings.ADMIN_DATABASE, {VAULT_DB!r})\n"
    )
    bench_env = {**env, "CUSTODIA_ENV": "development", "DJANGO_SETTINGS_MODULE": "bench.settings"}
    subprocess.run([PYTHON, "-c", code], env=bench_env, check=True, cwd=ROOT, timeout=120)  # noqa: S603


# --- One operation of each kind (a client process) -------------------------------------------


def card_number(rng: random.Random) -> str:
    """A Luhn-valid 16-digit Visa number, never one of the sandbox's special test numbers."""
    while True:
        body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
        if not body.startswith("4000000000"):
            break
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def tokenize(client: VaultClient, http: urllib3.PoolManager, business: str, number: str) -> str:
    """A card added through the hosted form (as a browser without JavaScript) and redeemed;
    its token."""
    form = client.create_form(business, RETURN_URL)
    page = http.request("GET", form.form_url, redirect=False)
    if page.status != 200:
        raise VaultError(f"form page {page.status}")
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.data.decode())
    if match is None:
        raise VaultError("form page without a CSRF token")
    answer = http.request(
        "POST",
        form.form_url,
        fields={
            "csrfmiddlewaretoken": match.group(1),
            "number": number,
            "expiry": "12/40",
            "security_code": "123",
            "holder_name": "Bench Customer",
        },
        encode_multipart=False,
        headers={"Cookie": cookie, "Origin": client.base_url, "Referer": form.form_url},
        redirect=False,
    )
    if answer.status != 303:
        raise VaultError(f"form post {answer.status}")
    ref = parse_qs(urlsplit(answer.headers["Location"]).query)["ref"][0]
    return client.redeem_reference(business, ref).token


def _operation(
    kind: str, client: VaultClient, http: urllib3.PoolManager, card: Card, rng: random.Random
) -> Callable[[], None]:
    if kind == "read":

        def read() -> None:
            client.get_card(card.business, card.token)

        return read
    if kind == "charge":

        def charge() -> None:
            result = client.charge(
                card.business,
                card.token,
                amount=AMOUNT,
                currency=CURRENCY,
                idempotency_key=f"bench-{uuid.uuid4().hex}",
            )
            if result.status != "approved":
                raise VaultError(f"charge {result.status}")

        return charge

    def add() -> None:
        tokenize(client, http, card.business, card_number(rng))

    return add


def _drive(kind: str, vault: Vault, card: Card, seconds: float, results: Any) -> None:
    """One client: `kind` operations one after another for `seconds`; latencies and failures."""
    client = VaultClient(vault.url, vault.secret, ca_file=vault.ca)
    http = urllib3.PoolManager(ssl_context=ssl.create_default_context(cafile=vault.ca))
    operation = _operation(kind, client, http, card, random.Random())  # noqa: S311
    latencies: list[float] = []
    failed = 0
    started = time.perf_counter()
    deadline = started + seconds
    while (before := time.perf_counter()) < deadline:
        try:
            operation()
        except (VaultError, KeyError, urllib3.exceptions.HTTPError):
            failed += 1
        latencies.append(time.perf_counter() - before)
    results.put((latencies, failed, time.perf_counter() - started))


def stats(latencies: list[float], failed: int, elapsed: float) -> dict[str, Any]:
    """wrk's figures (scenario JSON and charts): operations, ops/s, percentiles in ms."""
    ordered = sorted(latencies) or [0.0]

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {
        "requests": len(latencies),
        "unexpected": failed,
        "duration_us": int(elapsed * 1e6),
        "rps": len(latencies) / elapsed,
        "ok_rps": max(0, len(latencies) - failed) / elapsed,
        "p50_ms": percentile(50),
        "p90_ms": percentile(90),
        "p99_ms": percentile(99),
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def load(kind: str, vault: Vault, card: Card, *, seconds: float, clients: int) -> dict[str, Any]:
    """`clients` processes of `kind` operations at once for `seconds`; their combined figures."""
    results: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_drive, args=(kind, vault, card, seconds, results))
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    parts = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    figures = stats(
        [latency for part in parts for latency in part[0]],
        sum(part[1] for part in parts),
        max(part[2] for part in parts),
    )
    if figures["unexpected"]:
        figures["warning"] = f"{figures['unexpected']} failed {kind} operations"
        say(f"warning: vault {kind}: {figures['warning']}")
    return figures


# --- The scenarios ---------------------------------------------------------------------------


def scenario_17_18(bench: Bench, prod: dict[str, str], only: frozenset[str], seconds: int) -> None:
    with vault_server(prod) as vault:
        say(f"vault: started at {vault.url} (its own database {VAULT_DB})")
        client = VaultClient(vault.url, vault.secret, ca_file=vault.ca)
        http = urllib3.PoolManager(ssl_context=ssl.create_default_context(cafile=vault.ca))
        business = str(uuid.uuid4())
        card = Card(business, tokenize(client, http, business, card_number(random.Random())))  # noqa: S311
        if "17" in only:
            scenario_17(bench, vault, card, seconds)
        if "18" in only:
            scenario_18(bench, vault, card, seconds)


def scenario_17(bench: Bench, vault: Vault, card: Card, seconds: int) -> None:
    """Tokenize and charge throughput against signed reads, same vault, mirrored order."""
    say("vault: tokenize and charge throughput vs signed reads")
    kinds = ("read", "charge", "tokenize")
    for kind in kinds:
        # Unmeasured: each worker's first requests (imports, the business's key, connections).
        load(kind, vault, card, seconds=2, clients=CONNECTIONS)
    measured: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for kind in (*kinds, *reversed(kinds)):
        measured[kind].append(load(kind, vault, card, seconds=seconds, clients=CONNECTIONS))
    runs = {kind: mean_of(each) for kind, each in measured.items()}
    name = "17-vault-throughput"
    bench.results[name] = {"runs": runs, "clients": CONNECTIONS}
    reads = runs["read"]["ok_rps"]
    bench.record(
        name, "charges/s vs signed reads/s", runs["charge"]["ok_rps"], reads, at_least=CHARGE_TARGET
    )
    bench.record(
        name,
        "tokenizations/s vs signed reads/s",
        runs["tokenize"]["ok_rps"],
        reads,
        at_least=TOKENIZE_TARGET,
    )


def scenario_18(bench: Bench, vault: Vault, card: Card, seconds: int) -> None:
    """One charge at a time: through VaultClient over HTTPS vs do_charge in the vault's
    settings process, mirrored (https in-process in-process https)."""
    say("vault: the app-to-vault hop, a charge over HTTPS vs in-process")
    load("charge", vault, card, seconds=2, clients=1)  # unmeasured, as in 17
    https: list[dict[str, Any]] = []
    local: list[dict[str, Any]] = []
    inprocess_env = {**vault.env, "DJANGO_SETTINGS_MODULE": "custodia.vault.settings"}
    for side in ("https", "in-process", "in-process", "https"):
        if side == "https":
            https.append(load("charge", vault, card, seconds=seconds, clients=1))
        else:
            local.append(
                python_json(
                    inprocess_env,
                    "-m",
                    "bench.vault",
                    "in-process",
                    card.business,
                    card.token,
                    str(seconds),
                    timeout=seconds + 120,
                )
            )
    runs = {"https": mean_of(https), "in-process": mean_of(local)}
    name = "18-vault-hop"
    bench.results[name] = {
        "runs": runs,
        "statements_per_charge": local[-1]["statements_per_charge"],
        "statements_per_request": local[-1]["statements_per_request"],
    }
    bench.record(
        name,
        "charge ms, HTTPS vs in-process",
        runs["https"]["mean_ms"],
        runs["in-process"]["mean_ms"],
        at_most=HOP_TARGET,
    )
    bench.record(
        name,
        "charges/s, HTTPS vs in-process",
        runs["https"]["ok_rps"],
        runs["in-process"]["ok_rps"],
    )


# --- The subprocess side (the vault's own settings) -----------------------------------------


def in_process(business: str, token: str, seconds: float) -> dict[str, Any]:
    """`do_charge` one after another for `seconds`, as the vault's view calls it (the same body
    digest); after 20 unmeasured charges (the business's key, the connections)."""
    from django.db import connections

    from custodia.vault.charging import do_charge
    from custodia.vault.idempotency import request_digest

    body = json.dumps(
        {"business_id": business, "token": token, "amount": AMOUNT, "currency": CURRENCY},
        separators=(",", ":"),
    ).encode()
    business_id = uuid.UUID(business)

    def charge() -> bool:
        done = do_charge(
            business_id,
            token=token,
            amount=AMOUNT,
            currency=CURRENCY,
            idempotency_key=f"bench-{uuid.uuid4().hex}",
            digest=request_digest("/v1/charges", body),
        )
        return done.status == "approved"

    for _ in range(20):
        charge()
    latencies: list[float] = []
    failed = 0
    started = time.perf_counter()
    deadline = started + seconds
    while (before := time.perf_counter()) < deadline:
        failed += 0 if charge() else 1
        latencies.append(time.perf_counter() - before)
    figures = stats(latencies, failed, time.perf_counter() - started)
    # Unmeasured: the statements one charge sends on each connection (the vault's own and the
    # sandbox gateway's), which is most of what it costs (bench/README.md).
    vault_statements, gateway_statements = StatementCounter(), StatementCounter()
    with (
        connections["default"].execute_wrapper(vault_statements),
        connections["gateway"].execute_wrapper(gateway_statements),
    ):
        charge()
    figures["statements_per_charge"] = {
        "vault": vault_statements.count,
        "gateway": gateway_statements.count,
    }
    figures["statements_per_request"] = statements_per_request(business, token)
    return figures


def statements_per_request(business: str, token: str) -> dict[str, int]:
    """The statements the vault's own views send for one signed card read and one signed charge
    (the signature checked, its nonce stored, the work), called in this process with requests
    signed by the app's client: what the two sides of scenario 17's charge ratio cost the
    database."""
    from django.conf import settings
    from django.db import connections
    from django.test import RequestFactory

    from custodia.vault import views

    signer = VaultClient(settings.VAULT_URL, settings.VAULT_SIGNING_SECRET)
    factory = RequestFactory()
    body = json.dumps(
        {"business_id": business, "token": token, "amount": AMOUNT, "currency": CURRENCY},
        separators=(",", ":"),
    ).encode()
    key = f"bench-{uuid.uuid4().hex}"
    counted: dict[str, int] = {}
    for kind in ("read", "charge"):
        if kind == "read":
            path, raw = f"/v1/cards/{token}", b""
            headers = signer.signed_headers("GET", path, business, "", raw)
        else:
            path, raw = "/v1/charges", body
            headers = signer.signed_headers("POST", path, business, key, raw)
        headers.pop("Content-Type")
        statements = [StatementCounter() for _ in connections]
        with contextlib.ExitStack() as stack:
            for alias, counter in zip(connections, statements, strict=True):
                stack.enter_context(connections[alias].execute_wrapper(counter))
            if kind == "read":
                answer = views.card(factory.get(path, headers=headers), token=token)
            else:
                request = factory.post(
                    path, data=raw, content_type="application/json", headers=headers
                )
                answer = views.charges(request)
        if answer.status_code != 200:
            raise RuntimeError(f"signed {kind} answered {answer.status_code}")
        counted[kind] = sum(counter.count for counter in statements)
    return counted


def main(argv: list[str]) -> None:
    """`in-process BUSINESS TOKEN SECONDS`: one JSON line (run with the vault's settings)."""
    if len(argv) != 4 or argv[0] != "in-process":
        raise SystemExit("usage: python -m bench.vault in-process BUSINESS TOKEN SECONDS")
    if os.environ.get("DJANGO_SETTINGS_MODULE") != "custodia.vault.settings":
        raise SystemExit("bench.vault in-process runs with the vault's settings only")
    import django

    django.setup()
    print(json.dumps(in_process(argv[1], argv[2], float(argv[3]))))


if __name__ == "__main__":
    main(sys.argv[1:])
