"""Importing clients from a CSV file: upload, preview (nothing written), confirm (docs/import.md).

The preview carries the rows it shows to the confirm step in one signed field (django.core
signing, with a salt of its own and an hour's lifetime), bound to the business and the member who
uploaded: a field edited, copied to another member or business, or kept too long is refused with
a 400, and the action checks every row again anyway. The rows are in that member's own page only
(pages are `Cache-Control: no-store`), never in a log, cache or table.

The upload is read in memory with a size cap (`CappedMemoryUpload`): a file never touches the
disk, and one over the cap is dropped as it arrives. Upload handlers must be set before anything
reads the request's body, which CSRF checking does: so the view exempts itself from the
middleware's check and runs the same check (`csrf_protect`) after setting them.
"""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from custodia.clients.actions import ImportRefused, check_client_rows, do_import_clients
from custodia.clients.importing import (
    MAX_BYTES,
    ImportFileError,
    ImportRow,
    RowError,
    errors_by_row,
    parse_csv,
)
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.web.decorators import member_required

PREVIEW_SALT = "custodia.clients.import.preview"
PREVIEW_MAX_AGE = 60 * 60  # seconds
# Rows to add the preview lists; every row with an error is listed.
PREVIEW_ROWS_SHOWN = 200
TOO_LARGE = f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it into smaller files."


class CappedMemoryUpload(FileUploadHandler):
    """Every uploaded file kept in memory, whatever its size, and dropped past MAX_BYTES."""

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request)
        self.too_large = False
        self.buffer = io.BytesIO()

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if start + len(raw_data) > MAX_BYTES:
            self.too_large = True
            self.buffer = io.BytesIO()
            raise SkipFile
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "UTF-8, at most 2 MB and 5,000 rows; a first row naming the columns: name, email, "
            "phone, address, notes, and for one pet per client pet_name, pet_species, "
            "pet_breed, pet_birthday (YYYY-MM-DD), pet_feeding, pet_medication, pet_vet_name, "
            "pet_vet_phone, pet_notes (a business export's clients.csv works as it is)."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


class ImportConfirmForm(forms.Form):
    preview = forms.CharField(widget=forms.HiddenInput)


def seal_preview(actor: Actor, rows: list[ImportRow]) -> str:
    """The rows, signed for this member of this business (the confirm step's field)."""
    payload = {
        "business": str(actor.tenant_id),
        "member": str(actor.membership.pk),
        "rows": [row.to_json() for row in rows],
    }
    return signing.dumps(payload, salt=PREVIEW_SALT, compress=True)


def open_preview(actor: Actor, sealed: str) -> list[ImportRow] | None:
    """The rows of a preview this member made within the hour, or None."""
    try:
        payload = signing.loads(sealed, salt=PREVIEW_SALT, max_age=PREVIEW_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired included
        return None
    if not isinstance(payload, dict) or (payload.get("business"), payload.get("member")) != (
        str(actor.tenant_id),
        str(actor.membership.pk),
    ):
        return None
    try:
        return [ImportRow.from_json(row) for row in payload.get("rows", [])]
    except ValueError:
        return None


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def client_import(request: HttpRequest) -> HttpResponse:
    """Upload a CSV file of clients: a preview of what would be added, and of every error."""
    upload = CappedMemoryUpload(request)
    request.upload_handlers = [upload]
    return _client_import(request, upload=upload)


@csrf_protect
@member_required(Permission.CLIENTS_RECORD_WRITE)
def _client_import(request: HttpRequest, actor: Actor, upload: CappedMemoryUpload) -> HttpResponse:
    if request.method != "POST":
        return render(request, "clients/import.html", {"form": ImportUploadForm()})
    form = ImportUploadForm(request.POST, request.FILES)
    if upload.too_large:
        form.add_error("file", TOO_LARGE)
    if not form.is_valid():
        return render(request, "clients/import.html", {"form": form}, status=400)
    try:
        rows, errors = parse_csv(form.cleaned_data["file"].read())
    except ImportFileError as exc:
        form.add_error("file", str(exc))
        return render(request, "clients/import.html", {"form": form}, status=400)
    errors += check_client_rows(rows, actor=actor)
    if errors:
        return _preview(request, rows, errors, form=form)
    sealed = seal_preview(actor, rows)
    # The confirm step posts it back: it must fit in a request body (4 KB for the rest).
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and len(sealed) > limit - 4096:
        form.add_error("file", "The file is too large to preview: split it into smaller files.")
        return render(request, "clients/import.html", {"form": form}, status=400)
    return _preview(request, rows, [], confirm=ImportConfirmForm(initial={"preview": sealed}))


@require_POST
@member_required(Permission.CLIENTS_RECORD_WRITE)
def client_import_confirm(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Write the previewed rows, all or none."""
    form = ImportConfirmForm(request.POST)
    rows = open_preview(actor, form.data.get("preview", "")) if form.is_valid() else None
    if rows is None:
        context = {
            "title": "Preview not valid",
            "message": "This preview expired or was altered: upload the file again.",
        }
        return render(request, "web/error.html", context, status=400)
    try:
        created = do_import_clients(rows, actor=actor)
    except ImportRefused as exc:
        return _preview(request, rows, exc.row_errors, form=ImportUploadForm())
    messages.success(request, f"Imported {len(created)} client{'s' if len(created) != 1 else ''}.")
    return redirect("client_list")


def _preview(
    request: HttpRequest,
    rows: list[ImportRow],
    errors: list[RowError],
    *,
    form: ImportUploadForm | None = None,
    confirm: ImportConfirmForm | None = None,
) -> HttpResponse:
    grouped = errors_by_row(errors)
    to_add = [row for row in rows if row.row not in grouped]
    names = {row.row: row.client.get("name", "") for row in rows}
    context = {
        "form": form,
        "confirm": confirm,
        "to_add": to_add[:PREVIEW_ROWS_SHOWN],
        "more_to_add": max(0, len(to_add) - PREVIEW_ROWS_SHOWN),
        "count_to_add": len(to_add),
        "errors": [
            {"row": row, "name": names.get(row, ""), "problems": problems}
            for row, problems in grouped.items()
        ],
    }
    return render(request, "clients/import_preview.html", context, status=400 if errors else 200)
