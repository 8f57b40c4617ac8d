"""`make bench`: production-configured servers, wrk load, ratios against same-run baselines.

Usage: python -m bench.run [--full]. Writes bench/results/<scenario>.json, summary.json and PNG
charts, and prints a table. See bench/README.md for what each scenario compares.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench import (
    accounts,
    audit,
    backups,
    calendars,
    crypto,
    export,
    invoices,
    photos,
    retention,
    series,
    telemetry,
    vault,
)
from bench.harness import (
    DB_NAME,
    FULL,
    OWNER_EMAIL,
    PYTHON,
    QUICK,
    RESULTS,
    ROOT,
    SMOKE,
    Bench,
    Profile,
    Row,
    custodia,
    login_form,
    mean_of,
    python_json,
    say,
    server,
    session_cookie,
    wrk,
)


def _hash_for(seconds: float, counter: Any) -> None:
    from argon2 import PasswordHasher

    sys.path.insert(0, str(ROOT / "src"))
    from custodia.accounts.hashers import OwaspArgon2PasswordHasher as Owasp

    hasher = PasswordHasher(
        time_cost=Owasp.time_cost, memory_cost=Owasp.memory_cost, parallelism=Owasp.parallelism
    )
    stored = hasher.hash("benchmark password 1")
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        hasher.verify(stored, "benchmark password 1")
        count += 1
    with counter.get_lock():
        counter.value += count


# Hashing-pool processes given to the server: its default, half the cores.
HASH_SLOTS = max(1, (os.cpu_count() or 2) // 2)


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def raw_hashes_per_second(seconds: float, processes: int, *, others_busy: bool = False) -> float:
    """argon2id verifications per second, one process per core, same parameters as logins.

    With `others_busy`, the machine's other cores each run a busy loop meanwhile: on this
    machine's virtual cores a hash is a fifth slower when the core beside it works (measured:
    46 -> 36 per second), and a server's other cores always work while it hashes logins."""
    counter = multiprocessing.Value("i", 0)
    spinners = [
        multiprocessing.Process(target=_spin, args=(seconds + 0.5,))
        for _ in range(max(0, (os.cpu_count() or 2) - processes) if others_busy else 0)
    ]
    for spinner in spinners:
        spinner.start()
    workers = [
        multiprocessing.Process(target=_hash_for, args=(seconds, counter)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for process in workers + spinners:
        process.join()
    return counter.value / seconds


# --- Scenarios --------------------------------------------------------------------------------


def targets(env: dict[str, str]) -> dict[str, Any]:
    """Ids and search terms from the target business (read as the owner, under RLS)."""
    code = (
        "import json, django; django.setup()\n"
        "from django.db import transaction\n"
        "from custodia.clients.access import list_clients\n"
        "from custodia.core.actor import acting_as\n"
        "from custodia.tenancy.actors import console_actors, find_user\n"
        "with transaction.atomic():\n"
        f"    actor = console_actors(find_user({OWNER_EMAIL!r}), 'bench-target')[0]\n"
        "    with acting_as(actor):\n"
        # Through the model, which opens the sealed email and phone (values() would not).
        "        rows = [{'id': c.id, 'name': c.name, 'email': c.email, 'phone': c.phone}"
        " for c in list_clients(actor).order_by('?')[:200]]\n"
        "    print(json.dumps({'tenant': str(actor.tenant_id), 'clients': rows}, default=str))\n"
    )
    return dict(python_json(env, "-c", code, timeout=120))


def search_paths(data: dict[str, Any]) -> dict[str, list[str]]:
    """List-API paths for each kind of search the UI offers, over many clients."""
    quote = urllib.parse.quote
    clients = data["clients"]
    return {
        "list": ["/api/v1/clients"],
        # What someone types: a first name and the initial of the surname.
        "name prefix": [
            f"/api/v1/clients?q={quote(c['name'][: c['name'].index(' ') + 2])}" for c in clients
        ],
        # A word inside the name, as in "Lee" for "Kim Lee": the surname.
        "name part": [f"/api/v1/clients?q={quote(c['name'].split()[1])}" for c in clients],
        "email": [f"/api/v1/clients?q={quote(c['email'])}" for c in clients],
        "phone": [f"/api/v1/clients?q={quote(c['phone'])}" for c in clients],
        "key": [f"/api/v1/clients/{c['id']}" for c in clients],
    }


def explain(env: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """Plans of the list and search queries under RLS."""
    sample = data["clients"][0]
    queries = {
        "list": "",
        "name prefix": sample["name"][:4],
        "name part": sample["name"].split()[1],
        "email": sample["email"],
        "phone": sample["phone"],
    }
    return dict(python_json(env, "-m", "bench.explain", json.dumps(queries), timeout=300))


ALL_SCENARIOS = frozenset({str(n) for n in range(1, 24)})
# The generated businesses' data keys: a keystore of the benchmark's own, emptied with each fresh
# database (a run adds up to 10,000 businesses, whose keys must not pile up in var/keys).
KEYSTORE = Path(os.environ.get("CUSTODIA_VAR_DIR", ROOT / "var")) / "bench-keys"


def run(profile: Profile, only: frozenset[str] = ALL_SCENARIOS) -> Bench:
    """Every scenario (or those in `only`), in an order that builds the dataset once."""
    secret = secrets.token_urlsafe(64)
    password = "bench " + secrets.token_urlsafe(12)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "CUSTODIA_DB_NAME": DB_NAME,
        "CUSTODIA_SECRET_KEY": secret,
        "CUSTODIA_ENV": "development",
        "CUSTODIA_HASH_CONCURRENCY": str(HASH_SLOTS),
        "CUSTODIA_KEYSTORE_DIR": str(KEYSTORE),
    }
    env.pop("CUSTODIA_APP_DB_PASSWORD", None)
    prod = {
        **env,
        "CUSTODIA_ENV": "production",
        "CUSTODIA_SMTP_HOST": "smtp.invalid",
        "CUSTODIA_APP_DB_PASSWORD": secrets.token_urlsafe(24),
        # The card vault that `custodia serve` starts beside the app (docs/payments.md): its
        # production settings want their secrets, and the sandbox gateway said on purpose.
        "CUSTODIA_VAULT_SIGNING_SECRET": secrets.token_urlsafe(40),
        "CUSTODIA_VAULT_SECRET_KEY": secrets.token_urlsafe(40),
        "CUSTODIA_VAULT_DB_PASSWORD": secrets.token_urlsafe(24),
        "CUSTODIA_VAULT_SANDBOX": "true",
    }
    bench = Bench(profile, env)
    seconds = profile.seconds
    say(
        f"profile {profile.name}: target business {profile.target_clients:,} clients; "
        f"{profile.small_businesses} then {profile.large_businesses:,} other businesses of "
        f"{profile.clients_per_business} clients; {seconds} s per load run"
    )

    started = time.monotonic()
    shutil.rmtree(KEYSTORE, ignore_errors=True)
    subprocess.run(  # noqa: S603
        [
            PYTHON,
            "-c",
            "import django; django.setup()\n"
            "from custodia.ops.management.commands.setup import prepare_database\n"
            f"prepare_database({DB_NAME!r}, fresh=True)",
        ],
        env=env,
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    say(f"fresh database {DB_NAME} migrated in {time.monotonic() - started:.1f} s")
    output = custodia(
        env,
        "bench-data",
        "--businesses",
        str(profile.small_businesses),
        "--clients-per-business",
        str(profile.clients_per_business),
        "--target-clients",
        str(profile.target_clients),
        "--owner-password",
        password,
        # Scenario 12's plaintext baseline reads a target business of its own.
        *(["--plaintext-target"] if "12" in only else []),
    )
    say(output.strip())
    bench.results["dataset"] = {"small": output.strip()}
    token = (
        custodia(
            env,
            "token",
            "create",
            "--email",
            OWNER_EMAIL,
            "--business",
            "bench-target",
            "--days",
            "1",
        )
        .strip()
        .splitlines()[-1]
    )
    bearer = {"Authorization": f"Bearer {token}"}
    data = targets(env)
    paths = search_paths(data)

    # 2, small side: the same business's list and search with 10 other businesses.
    small: dict[str, Any] = {}
    if "2" in only:
        with server(prod) as url:
            small = tenant_size_runs(url, paths, bearer, seconds)
        small_plans = explain(env, data)

        extra = profile.large_businesses - profile.small_businesses
        output = custodia(
            env,
            "bench-data",
            "--businesses",
            str(extra),
            "--clients-per-business",
            str(profile.clients_per_business),
            "--seed",
            "2",
        )
        say(output.strip())
        bench.results["dataset"]["large"] = output.strip()
    large: dict[str, Any] = {}
    with server(prod) as url:
        if "2" in only:
            large = tenant_size_runs(url, paths, bearer, seconds)
            scenario_2_done(bench, small, large, small_plans, explain(env, data))
        if only & {"3", "4"}:
            scenario_3_4(bench, url, password, bearer, paths, seconds)
        if "5" in only:
            scenario_5(bench, url, bearer, paths, seconds)
        if "6" in only:
            scenario_6(bench, url, password, seconds)
        if "7" in only:
            accounts.scenario_7(bench, url, env, password, seconds)
    if "8" in only:
        accounts.scenario_8(bench, prod, password, seconds)
    if "9" in only:
        audit.scenario_9(bench, prod, bearer, data, seconds, full=profile is FULL)
    if only & {"10", "11"}:
        audit.scenario_10_11(bench, env, data["tenant"], profile.name)
    if "12" in only:
        crypto.scenario_12(bench, prod, env, bearer, seconds)
    if "13" in only:
        crypto.scenario_13(bench, prod, env, bearer, data["tenant"], seconds)
    if "14" in only:
        backups.scenario_14(bench, env)
    if "15" in only:
        export.scenario_15(bench, env)
    if "16" in only:
        retention.scenario_16(bench, env)
    if only & {"17", "18"}:
        vault.scenario_17_18(bench, prod, only, seconds)
    if "19" in only:
        invoices.scenario_19(bench, env)
    if "21" in only:
        series.scenario_21(bench, env)
    if "22" in only:
        photos.scenario_22(bench, env)
    if "23" in only:
        telemetry.scenario_23(bench, prod, bearer, data, seconds)
    if "20" in only:
        # After the others: it adds staff and thousands of visits to the target business.
        calendars.scenario_20(bench, prod, env, bearer, seconds)
    if "1" in only:
        with server(env, CUSTODIA_BENCH_BASELINE="1", CUSTODIA_SMTP_HOST="smtp.invalid") as url:
            scenario_1(bench, url, bearer, data, seconds)
    bench.results["elapsed_seconds"] = time.monotonic() - started
    return bench


def scenario_1(
    bench: Bench, url: str, bearer: dict[str, str], data: dict[str, Any], seconds: int
) -> None:
    """Cost of protection: API (token, RLS context, policies) vs the bare view, same server."""
    tenant = data["tenant"]
    ids = [c["id"] for c in data["clients"]]
    # Unmeasured: a fresh server's first seconds (imports, data keys, database connections)
    # would otherwise fall on whichever run comes first, the protected detail.
    wrk(url, [f"/api/v1/clients/{i}" for i in ids], seconds=2, connections=4, headers=bearer)
    wrk(url, [f"/bench/bare/clients/{tenant}/{i}/" for i in ids], seconds=2, connections=4)
    loads = {
        "detail protected": ([f"/api/v1/clients/{i}" for i in ids], bearer),
        "detail bare": ([f"/bench/bare/clients/{tenant}/{i}/" for i in ids], {}),
        "list protected": (["/api/v1/clients"], bearer),
        "list bare": ([f"/bench/bare/clients/{tenant}/"], {}),
    }
    measured: dict[str, list[dict[str, Any]]] = {load: [] for load in loads}
    # Mirrored order, protected bare bare protected (harness.mean_of).
    for kind in ("detail", "list"):
        for side in ("protected", "bare", "bare", "protected"):
            paths, headers = loads[f"{kind} {side}"]
            measured[f"{kind} {side}"].append(
                wrk(url, paths, seconds=seconds, connections=4, headers=headers)
            )
    runs = {load: mean_of(each) for load, each in measured.items()}
    name = "1-cost-of-protection"
    bench.results[name] = {"runs": runs}
    for kind in ("detail", "list"):
        protected, bare = runs[f"{kind} protected"], runs[f"{kind} bare"]
        bench.record(
            name, f"client {kind} req/s", protected["ok_rps"], bare["ok_rps"], at_least=0.75
        )
        bench.record(name, f"client {kind} p99 ms", protected["p99_ms"], bare["p99_ms"], at_most=2)


def tenant_size_runs(
    url: str, paths: dict[str, list[str]], bearer: dict[str, str], seconds: int
) -> dict[str, Any]:
    """Scenario 2's list and name searches (a prefix of the name, a word inside it) on a fresh
    server. Unmeasured first: 2 s of each, so neither side measures a new server's first
    requests (statements prepared after five uses on each pooled connection) or, on the large
    side, the target's pages that the bulk load of other businesses pushed out of the caches."""
    kinds = ("list", "name prefix", "name part")
    for kind in kinds:
        wrk(url, paths[kind], seconds=2, connections=4, headers=bearer)
    return {
        kind: wrk(url, paths[kind], seconds=seconds, connections=4, headers=bearer)
        for kind in kinds
    }


def scenario_2_done(
    bench: Bench,
    small: dict[str, Any],
    large: dict[str, Any],
    small_plans: dict[str, Any],
    large_plans: dict[str, Any],
) -> None:
    """Tenant-size independence: the same business's queries, small vs large database."""
    name = "2-tenant-size"
    bench.results[name] = {
        "small": small,
        "large": large,
        "plans": {"small": small_plans, "large": large_plans},
    }
    for kind in small:
        bench.record(
            name, f"{kind} p50 ms", large[kind]["p50_ms"], small[kind]["p50_ms"], at_most=1.2
        )
        bench.record(
            name, f"{kind} p99 ms", large[kind]["p99_ms"], small[kind]["p99_ms"], at_most=1.2
        )


def scenario_3_4(
    bench: Bench,
    url: str,
    password: str,
    bearer: dict[str, str],
    paths: dict[str, list[str]],
    seconds: int,
) -> None:
    """Login throughput vs raw argon2id; ordinary p99 with and without a login storm."""
    form, _, _ = login_form(url)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": form.csrf_token, "login": OWNER_EMAIL, "password": password}
    )
    login = {
        "Cookie": f"__Host-csrftoken={form.csrf_cookie}",
        "Referer": url + "/accounts/login/",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    # The server hashes on HASH_SLOTS cores at most (accounts/hashpool.py): the baseline is raw
    # argon2id on as many cores, so the ratio is what logins cost beyond the hash. It is measured
    # before and after the logins (the mean): this machine's speed drifts by a tenth or more
    # from one run to the next, and the drift then falls on both sides.
    before = raw_hashes_per_second(seconds / 2, processes=HASH_SLOTS)
    logins = wrk(
        url,
        ["/accounts/login/"],
        seconds=seconds,
        connections=4,
        headers=login,
        method="POST",
        body=body,
        expect=302,
    )
    after = raw_hashes_per_second(seconds / 2, processes=HASH_SLOTS)
    hashes = (before + after) / 2
    # The hash's own ceiling here: argon2id while the other cores work, as they do in a login.
    crowded = raw_hashes_per_second(seconds / 2, processes=HASH_SLOTS, others_busy=True)
    name = "3-login"
    bench.results[name] = {
        "logins": logins,
        "raw_hashes_per_second": hashes,
        "raw_hashes_per_second_before_after": [before, after],
        "raw_hashes_per_second_other_cores_busy": crowded,
    }
    bench.record(name, "logins/s vs argon2id/s", logins["ok_rps"], hashes, at_least=0.85)
    bench.record(name, "logins/s vs argon2id/s, busy", logins["ok_rps"], crowded)

    # Quiet before and after the storm (the mean p99), for the same drift as above.
    quiet = [wrk(url, paths["key"], seconds=seconds, connections=4, headers=bearer)]
    storm: dict[str, Any] = {}

    def hammer() -> None:
        storm["logins"] = wrk(
            url,
            ["/accounts/login/"],
            seconds=seconds + 2,
            connections=8,
            headers=login,
            method="POST",
            body=body,
            expect=302,
        )

    import threading

    thread = threading.Thread(target=hammer)
    thread.start()
    time.sleep(1)
    stormy = wrk(url, paths["key"], seconds=seconds, connections=4, headers=bearer)
    thread.join()
    quiet.append(wrk(url, paths["key"], seconds=seconds, connections=4, headers=bearer))
    name = "4-login-storm"
    bench.results[name] = {
        "quiet before": quiet[0],
        "storm": stormy,
        "quiet after": quiet[1],
        "storm_logins": storm.get("logins"),
    }
    quiet_p99 = (quiet[0]["p99_ms"] + quiet[1]["p99_ms"]) / 2
    bench.record(name, "client detail p99 ms", stormy["p99_ms"], quiet_p99, at_most=1.5)


def scenario_5(
    bench: Bench, url: str, bearer: dict[str, str], paths: dict[str, list[str]], seconds: int
) -> None:
    """Search under RLS on the big business vs the primary-key lookup."""
    runs = {
        kind: wrk(url, paths[kind], seconds=seconds, connections=4, headers=bearer)
        for kind in ("key", "name prefix", "name part", "email", "phone")
    }
    name = "5-search"
    bench.results[name] = {"runs": runs}
    for kind in ("name prefix", "name part", "email", "phone"):
        bench.record(
            name, f"search {kind} p99 ms", runs[kind]["p99_ms"], runs["key"]["p99_ms"], at_most=3
        )


def scenario_6(bench: Bench, url: str, password: str, seconds: int) -> None:
    """Dashboard and calendar at 32 connections vs a static page from the same process."""
    cookie = {"Cookie": session_cookie(url, password)}
    pages = (("static", "/security/"), ("dashboard", "/app/"), ("calendar", "/app/calendar/"))
    for _, path in pages:
        # Unmeasured: a page's first requests on each worker (its template compiled, its
        # statements prepared after five uses on each pooled connection) would fall on its run.
        wrk(url, [path], seconds=2, connections=32, headers=cookie)
    measured: dict[str, list[dict[str, Any]]] = {page: [] for page, _ in pages}
    # Mirrored order, static dashboard calendar calendar dashboard static (harness.mean_of).
    for page, path in (*pages, *reversed(pages)):
        measured[page].append(wrk(url, [path], seconds=seconds, connections=32, headers=cookie))
    runs = {page: mean_of(each) for page, each in measured.items()}
    name = "6-pages"
    bench.results[name] = {"runs": runs, "note": "32 connections sharing one owner session"}
    for page in ("dashboard", "calendar"):
        bench.record(
            name, f"{page} p50 ms", runs[page]["p50_ms"], runs["static"]["p50_ms"], at_most=3
        )
        bench.record(
            name, f"{page} p99 ms", runs[page]["p99_ms"], runs["static"]["p99_ms"], at_most=4
        )


# --- Output -----------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    """The printed summary."""
    lines = [
        f"{'scenario':<22}{'figure':<30}{'measured':>10}{'baseline':>10}{'ratio':>8}"
        f"  {'target':<8}result"
    ]
    for r in rows:
        lines.append(
            f"{r.scenario:<22}{r.figure:<30}{r.measured:>10.2f}{r.baseline:>10.2f}"
            f"{r.ratio:>8.2f}  {r.target:<8}{'pass' if r.passed else 'FAIL'}"
        )
    return "\n".join(lines)


def load_runs(result: Any, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every wrk run inside a scenario's result, by a readable name."""
    found: dict[str, dict[str, Any]] = {}
    if isinstance(result, dict):
        if "p99_ms" in result:
            return {prefix.strip(): result}
        for key, value in result.items():
            if key not in {"plans", "figures"}:
                found.update(load_runs(value, f"{prefix} {key}" if key != "runs" else prefix))
    return found


def charts(bench: Bench) -> list[Path]:
    """One PNG per scenario: ratios against their targets, and latency percentiles per run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib missing (pip install -e '.[bench]'): no charts")
        return []
    written = []
    for scenario in sorted({r.scenario for r in bench.rows}):
        rows = [r for r in bench.rows if r.scenario == scenario]
        runs = load_runs(bench.results.get(scenario, {}))
        figure, (ratios, latency) = plt.subplots(
            1, 2, figsize=(13, 0.5 * max(len(rows), len(runs)) + 2.5)
        )
        positions = list(range(len(rows)))
        ratios.barh(
            positions,
            [r.ratio for r in rows],
            color=["tab:green" if r.passed else "tab:red" for r in rows],
        )
        for position, row in zip(positions, rows, strict=True):
            if row.target != "-":
                target = float(row.target.split()[-1])
                ratios.plot([target, target], [position - 0.4, position + 0.4], color="black")
        ratios.set_yticks(positions, [r.figure for r in rows])
        ratios.set_xlabel("ratio to the same-run baseline (black: target)")
        ratios.invert_yaxis()
        if not runs:  # figures without load runs (scenarios 10, 11): no latency panel
            latency.set_visible(False)
        else:
            names = list(runs)
            for offset, (key, label) in enumerate(
                (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"))
            ):
                latency.barh(
                    [i + (offset - 1) * 0.27 for i in range(len(names))],
                    [runs[n][key] for n in names],
                    height=0.27,
                    label=label,
                )
            latency.set_yticks(
                list(range(len(names))), [f"{n} ({runs[n]['ok_rps']:.0f} req/s)" for n in names]
            )
            latency.set_xlabel("latency, ms")
            latency.invert_yaxis()
            latency.legend()
        figure.suptitle(f"{scenario} ({bench.profile.name} profile)")
        figure.tight_layout()
        path = RESULTS / f"{scenario}.png"
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    return written


def save(bench: Bench) -> None:
    """JSON per scenario and a summary."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "profile": bench.profile.__dict__,
        "cores": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for scenario, result in bench.results.items():
        if isinstance(result, dict) and scenario[0].isdigit():
            (RESULTS / f"{scenario}.json").write_text(json.dumps({**meta, **result}, indent=2))
    summary = {
        **meta,
        "dataset": bench.results.get("dataset"),
        "elapsed_seconds": bench.results.get("elapsed_seconds"),
        "rows": [r.__dict__ for r in bench.rows],
    }
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Run the quick or full profile and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="2M clients, longer runs")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. 3,4")
    parser.add_argument(
        "--keep-data", action="store_true", help=f"keep the database {DB_NAME} afterwards"
    )
    options = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does it)")
    only = frozenset(options.only.split(",")) if options.only else ALL_SCENARIOS
    if not only <= ALL_SCENARIOS:
        known = ", ".join(sorted(ALL_SCENARIOS, key=int))
        raise SystemExit(f"--only: unknown scenarios {sorted(only - ALL_SCENARIOS)}; use {known}")
    bench = run(FULL if options.full else SMOKE if options.smoke else QUICK, only)
    save(bench)
    charts(bench)
    print(table(bench.rows))
    print(f"\nprofile {bench.profile.name}; results in {RESULTS}")
    if not options.keep_data:
        drop_database(bench.env)


def drop_database(env: dict[str, str]) -> None:
    """Drop the generated database (up to 2M clients of disk) once the results are written."""
    code = (
        "import django; django.setup()\n"
        "from custodia.cli import start_embedded_database; start_embedded_database()\n"
        "from django.conf import settings\n"
        "from custodia import embedded\n"
        f"embedded.drop_database(settings.ADMIN_DATABASE, {DB_NAME!r})\n"
    )
    subprocess.run([PYTHON, "-c", code], env=env, check=True, cwd=ROOT, timeout=120)  # noqa: S603
    shutil.rmtree(KEYSTORE, ignore_errors=True)


if __name__ == "__main__":
    main()
