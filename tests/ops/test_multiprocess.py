"""Under `custodia serve` each granian worker counts in files of its own; a scrape sums them."""

from __future__ import annotations

import os
import subprocess
import sys

from custodia.telemetry.metrics import MULTIPROC_ENV, reset_multiprocess_dir

REQUESTS = """
import django
django.setup()
from django.test import Client
client = Client()
for _ in range({count}):
    assert client.get("/healthz", secure=True).status_code == 200
"""
SCRAPE = """
import django
django.setup()
from custodia.telemetry.metrics import exposition
print(exposition().decode())
"""
SAMPLE = 'custodia_http_requests_total{method="GET",route="healthz",status="2xx"}'


def run(code: str, directory: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "custodia.settings", MULTIPROC_ENV: directory}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def count(text: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(SAMPLE + " "))
    return float(line.rsplit(" ", 1)[1])


def test_a_scrape_sums_every_worker_process_and_a_restart_starts_from_zero(tmp_path):
    directory = tmp_path / "metrics"
    reset_multiprocess_dir(directory)
    run(REQUESTS.format(count=3), str(directory))
    run(REQUESTS.format(count=4), str(directory))
    # A third process, which served none of them, sees all seven.
    assert count(run(SCRAPE, str(directory))) == 7
    # `custodia serve` empties the directory when it starts.
    reset_multiprocess_dir(directory)
    assert list(directory.iterdir()) == []
    assert SAMPLE not in run(SCRAPE, str(directory))
