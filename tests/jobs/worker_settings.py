"""The settings of the workers tests start: the app's, plus the tests' job kinds."""

from __future__ import annotations

from custodia.settings import *  # noqa: F403
from custodia.settings import PROCRASTINATE_IMPORT_PATHS

PROCRASTINATE_IMPORT_PATHS = [*PROCRASTINATE_IMPORT_PATHS, "tests.jobs.kinds"]
