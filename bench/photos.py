"""Scenario 22: visit photo upload and thumbnail throughput (docs/visits.md, "Photos").

In one process of the bench's settings, as the target business's owner at the console
(`tenancy.actors.console_actors`), on one of its scheduled visits, each step in a transaction of
its own that is rolled back (the visit keeps no photos; nothing piles up):

- upload: `scheduling.reporting.do_add_visit_photo` with a 3000 x 2000 JPEG carrying EXIF and a
  GPS position, as a phone sends it: Pillow verifies, turns it upright, scales it to 2048 px and
  re-encodes it without metadata, makes the 320 px thumbnail, both are sealed (AES-256-GCM) and
  written with the audit event;
- thumbnail: `scheduling.access.access_visit_photo_by_id(part="thumbnail")` of a stored photo:
  the row read under RLS, the thumbnail opened, the read recorded (what each thumbnail on a
  visit's page costs);
- the baseline, a text report saved: `scheduling.actions.do_update_visit(report=...)` (sealed,
  saved, audited), the visit report that photos sit beside.

Mirrored order (upload, thumbnail, report, report, thumbnail, upload), each side's rate over all
its rounds. Reported against the baseline, no target: an upload decodes and encodes megapixels,
so it is expected to cost tens of report saves; a thumbnail read should cost about one.
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any

from bench.harness import Bench, python_json, say

UPLOAD_SIZE = (3000, 2000)
ROUNDS = {"upload": 6, "thumbnail": 100, "report": 100}


def scenario_22(bench: Bench, env: dict[str, str]) -> None:
    say("photos: upload and thumbnail reads vs saving a text report")
    record_22(bench, python_json(env, "-m", "bench.photos", "measure", timeout=1800))


def record_22(bench: Bench, measured: dict[str, Any]) -> None:
    """The figures: uploads/s and thumbnails/s, each against report saves/s."""
    name = "22-photos"
    bench.results[name] = measured
    reports = measured["report_per_second"]
    bench.record(name, "photo uploads/s vs report saves/s", measured["upload_per_second"], reports)
    bench.record(
        name, "thumbnail reads/s vs report saves/s", measured["thumbnail_per_second"], reports
    )


# --- The subprocess side ---------------------------------------------------------------------


def phone_photo() -> bytes:
    """A phone-sized JPEG with EXIF (camera, orientation, GPS), made here."""
    from PIL import Image

    image = Image.new("RGB", UPLOAD_SIZE, (240, 240, 240))
    for x in range(0, UPLOAD_SIZE[0], 50):
        image.paste((30, 90, 200), (x, 0, x + 25, UPLOAD_SIZE[1]))
    exif = Image.Exif()
    exif[0x010F] = "BenchPhone"
    exif[0x0112] = 1
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 22.0, 11.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


def measure() -> dict[str, Any]:
    from django.db import transaction

    from custodia.core.actor import acting_as
    from custodia.ops.management.commands.bench_data import TARGET_OWNER_EMAIL, TARGET_SLUG
    from custodia.scheduling.access import access_visit_photo_by_id, list_visits
    from custodia.scheduling.actions import do_update_visit
    from custodia.scheduling.models import VisitStatus
    from custodia.scheduling.reporting import do_add_visit_photo
    from custodia.tenancy.actors import console_actors, find_user
    from custodia.tenancy.reads import Intent

    data = phone_photo()
    seconds: dict[str, float] = {side: 0.0 for side in ROUNDS}
    done: dict[str, int] = {side: 0 for side in ROUNDS}
    for side in ("upload", "thumbnail", "report", "report", "thumbnail", "upload"):
        rounds = ROUNDS[side] // 2
        with transaction.atomic():
            [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
            with acting_as(owner):
                visit = list_visits(owner).filter(status=VisitStatus.SCHEDULED).first()
                assert visit is not None, "the target business has no scheduled visit"
                # Unmeasured: the photo the thumbnail side reads.
                stored = do_add_visit_photo(visit, data, actor=owner)
                started = time.perf_counter()
                for number in range(rounds):
                    if side == "upload":
                        do_add_visit_photo(visit, data, actor=owner)
                    elif side == "thumbnail":
                        photo = access_visit_photo_by_id(
                            owner, visit.pk, stored.pk, part="thumbnail", intent=Intent.SHOW
                        )
                        assert len(photo.thumbnail) > 0
                    else:
                        do_update_visit(visit, actor=owner, report=f"Walked and fed, {number}.")
                seconds[side] += time.perf_counter() - started
                done[side] += rounds
            transaction.set_rollback(True)
    result: dict[str, Any] = {"upload_bytes": len(data), "upload_size": list(UPLOAD_SIZE)}
    for side in ROUNDS:
        result[f"{side}_rounds"] = done[side]
        result[f"{side}_seconds"] = seconds[side]
        result[f"{side}_per_second"] = done[side] / seconds[side]
    return result


def main(argv: list[str]) -> None:
    """`measure`: one JSON line."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if argv != ["measure"]:
        raise SystemExit("usage: python -m bench.photos measure")
    print(json.dumps(measure()))


if __name__ == "__main__":
    main(sys.argv[1:])
