"""Query lookups that stay index-friendly under row-level security."""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Lookup


@CharField.register_lookup
class Prefix(Lookup):  # type: ignore[type-arg]
    """`field__prefix=value`: PostgreSQL's `starts_with` operator, `^@`.

    Under row-level security the planner applies a query's conditions ahead of the policy's only
    when their operators are leakproof. LIKE (Django's `startswith`) is not, so a name search under
    RLS read every row of the business and filtered afterwards (16.9 ms for 200,000 clients);
    `^@` is leakproof and becomes a range on the `text_pattern_ops` index (0.5 ms).
    """

    lookup_name = "prefix"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ^@ {rhs}", [*lhs_params, *rhs_params]
