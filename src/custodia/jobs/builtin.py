"""The jobs framework's own periodic work (none yet besides what `custodia worker` does at
start): kept as the import path settings.PROCRASTINATE_IMPORT_PATHS names, so the worker
loads the runner's procrastinate tasks in every process."""

from __future__ import annotations

from custodia.jobs import runner

__all__ = ["runner"]
