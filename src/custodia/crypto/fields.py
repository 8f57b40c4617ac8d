"""`EncryptedTextField`: the one way a sensitive text is stored (docs/keys.md);
`EncryptedBinaryField` the same for bytes (visit photos).

The column is `bytea` holding a sealed value (crypto/keyring.py). A value is sealed in
`pre_save`, where the row is at hand for the associated data (business, table, column, row), and
opened when the attribute is first read on the instance, so a list that shows only names never
decrypts an address. A plain string is refused on every other path the field can see
(`QuerySet.update`, `bulk_update`, a filter with a string or a text expression): see
`get_db_prep_value` and the lookups below. What the field cannot see (raw SQL, an update with an
expression) meets the database's CHECK on every encrypted column (crypto/rows.py).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.db.models import Value
from django.db.models.lookups import Exact, In, IsNull
from django.db.models.query_utils import DeferredAttribute
from pydantic import ValidationError as PydanticError

from custodia.core import requestctx
from custodia.crypto.errors import CryptoError, IntegrityFailure, KeyUnavailable
from custodia.crypto.keyring import Unauthentic, UnknownVersion, keys_for

logger = logging.getLogger("custodia.crypto")


class Sealed:
    """A stored value not yet opened. It has no text form, so it cannot be shown by mistake."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __repr__(self) -> str:
        return f"<Sealed {len(self.blob)} bytes>"

    def __str__(self) -> str:
        raise TypeError("A sealed value is read through its model instance's attribute.")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.blob == self.blob

    def __hash__(self) -> int:
        return hash(self.blob)


def value_context(tenant_id: object, table: str, column: str, row: object) -> bytes:
    """Where a value belongs: the associated data that binds its ciphertext there.

    Unambiguous as joined: business and row ids are UUIDs and table and column names come from
    the models, none of which can contain the separator.
    """
    return f"{tenant_id}|{table}|{column}|{row}".encode()


def seal_text(tenant_id: object, table: str, column: str, row: object, plaintext: str) -> bytes:
    """The stored form of `plaintext` at that place, under the business's primary key."""
    return seal_bytes(tenant_id, table, column, row, plaintext.encode())


def seal_bytes(tenant_id: object, table: str, column: str, row: object, plaintext: bytes) -> bytes:
    """The stored form of `plaintext` bytes at that place (an image, or text as UTF-8)."""
    context = value_context(tenant_id, table, column, row)
    return keys_for(tenant_id).seal_bytes(plaintext, context)


def open_text(tenant_id: object, table: str, column: str, row: object, blob: bytes) -> str:
    """The plaintext of a stored value; IntegrityFailure (logged) if it does not authenticate or
    names a key version the business never had, KeyUnavailable (logged) if its key was
    destroyed. Either is noted on the request (core/requestctx.py)."""
    plaintext = open_bytes(tenant_id, table, column, row, blob)
    try:
        return plaintext.decode()
    except UnicodeDecodeError:
        # Authenticated bytes that are not text: a value of a binary column asked for as text.
        raise _integrity_failure(tenant_id, table, column, row) from None


def _integrity_failure(tenant_id: object, table: str, column: str, row: object) -> IntegrityFailure:
    failure = IntegrityFailure(table, column, row)
    # Ids only: which value failed, never its bytes or anything decrypted.
    logger.error(
        "integrity failure: %s.%s row %s tenant %s",
        table,
        column,
        row,
        tenant_id,
        extra={"event": "crypto.integrity_failure"},
    )
    _note(failure)
    return failure


def open_bytes(tenant_id: object, table: str, column: str, row: object, blob: bytes) -> bytes:
    """The plaintext bytes of a stored value, failing as `open_text` does."""
    context = value_context(tenant_id, table, column, row)
    try:
        try:
            return keys_for(tenant_id).open_bytes(blob, context)
        except UnknownVersion:
            # Another process may have added the version a moment ago: re-read the file once.
            return keys_for(tenant_id, refresh=True).open_bytes(blob, context)
    except (Unauthentic, UnknownVersion):
        raise _integrity_failure(tenant_id, table, column, row) from None
    except KeyUnavailable as unavailable:
        logger.warning(
            "unreadable, key destroyed: %s.%s row %s tenant %s",
            table,
            column,
            row,
            tenant_id,
            extra={"event": "crypto.key_unavailable"},
        )
        _note(unavailable)
        raise


def _note(failure: CryptoError) -> None:
    info = requestctx.current()
    if info is not None:
        info.unreadable.append(failure)


def request_failure(exception: Exception) -> CryptoError | None:
    """The unreadable value behind `exception`, if that is what failed the request: the error
    itself, or a serializer's error (pydantic's) raised while one was noted."""
    if isinstance(exception, CryptoError):
        return exception
    info = requestctx.current()
    if info is None or not info.unreadable or not isinstance(exception, PydanticError):
        return None
    failure = info.unreadable[-1]
    return failure if isinstance(failure, CryptoError) else None


class SealedAttribute(DeferredAttribute):
    """Opens the stored value on first read and keeps the plaintext on the instance.

    A data descriptor (it has `__set__`), so that reads come here even though the value lives in
    the instance's `__dict__`.
    """

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            field: EncryptedTextField = self.field  # type: ignore[assignment]
            value = field.open_value(
                instance.tenant_id,
                field.model._meta.db_table,
                field.column,
                instance.pk,
                value.blob,
            )
            instance.__dict__[field.attname] = value
        return value


class EncryptedTextField(models.Field):  # type: ignore[type-arg]
    """Text sealed with the owning business's data key. The model needs `tenant_id` and a
    primary key that is set before the first save (a UUID default)."""

    descriptor_class = SealedAttribute
    description = "Text encrypted with the business's data key (AES-256-GCM)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", "")
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def get_internal_type(self) -> str:
        return "BinaryField"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        return None if value is None else Sealed(bytes(value))

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        # The raw attribute: reading it through the descriptor would decrypt an unread value
        # only to encrypt it again.
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return value
        return Sealed(
            self.seal_value(
                model_instance.tenant_id,
                self.model._meta.db_table,
                self.column,
                model_instance.pk,
                value,
            )
        )

    def seal_value(
        self, tenant_id: object, table: str, column: str, row: object, value: Any
    ) -> bytes:
        """The stored form of the attribute's value."""
        return seal_text(tenant_id, table, column, row, str(value))

    def open_value(
        self, tenant_id: object, table: str, column: str, row: object, blob: bytes
    ) -> Any:
        """The attribute's value from its stored form."""
        return open_text(tenant_id, table, column, row, blob)

    def get_lookup(self, lookup_name: str) -> Any:
        # Only lookups whose values go through get_db_prep_value (which refuses plain text) and
        # whose expressions are checked; `contains`, `startswith`, `regex` and the like would
        # send plain text to SQL, so they do not exist on this field.
        return SAFE_LOOKUPS.get(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        return None

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.blob
        raise TypeError(
            f"{self.model.__name__}.{self.name} is encrypted: write it through save() on the "
            "instance and search it through its blind index."
        )


class EncryptedBinaryField(EncryptedTextField):
    """Bytes (an image) sealed with the owning business's data key: the same keys, associated
    data, rotation, CHECK and crypto-shredding as `EncryptedTextField`; read as `bytes`. Load
    it only where the bytes are needed (`.only()`/`.defer()`): each value is decrypted whole."""

    description = "Bytes encrypted with the business's data key (AES-256-GCM)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", b"")
        super().__init__(*args, **kwargs)

    def seal_value(
        self, tenant_id: object, table: str, column: str, row: object, value: Any
    ) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{self.model.__name__}.{self.name} holds bytes.")
        return seal_bytes(tenant_id, table, column, row, bytes(value))

    def open_value(
        self, tenant_id: object, table: str, column: str, row: object, blob: bytes
    ) -> Any:
        return open_bytes(tenant_id, table, column, row, blob)


def _refuse_plain_expressions(values: Any) -> None:
    """An expression compared with a sealed column must itself be sealed (another encrypted
    column); `Value("text")` or a text subquery would put plain text into the SQL."""
    for value in values if isinstance(values, (list, tuple, set)) else [values]:
        if hasattr(value, "resolve_expression"):
            output = getattr(value, "output_field", None)
            if not isinstance(output, EncryptedTextField) or _holds_a_value(value):
                raise TypeError(
                    "An encrypted field can only be compared with sealed values: search it "
                    "through its blind index."
                )


def _holds_a_value(expression: Any) -> bool:
    """A literal anywhere inside (`Cast(Value("text"), EncryptedTextField())` included)."""
    if isinstance(expression, Value):
        return True
    return any(
        _holds_a_value(source)
        for source in expression.get_source_expressions()
        if source is not None
    )


class SealedExact(Exact):
    def process_rhs(self, compiler: Any, connection: Any) -> Any:
        _refuse_plain_expressions(self.rhs)
        return super().process_rhs(compiler, connection)


class SealedIn(In):
    def process_rhs(self, compiler: Any, connection: Any) -> Any:
        _refuse_plain_expressions(self.rhs)
        return super().process_rhs(compiler, connection)


SAFE_LOOKUPS: dict[str, Any] = {"exact": SealedExact, "in": SealedIn, "isnull": IsNull}
