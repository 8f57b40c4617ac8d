"""Query lookups that stay index conditions under row-level security and in prepared statements."""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Lookup

# UTF-16 surrogates are not characters: PostgreSQL text cannot hold them.
SURROGATES = range(0xD800, 0xE000)


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in code-point order.

    None when there is none (a prefix of nothing but U+10FFFF). UTF-8's byte order is code-point
    order, which is the order of PostgreSQL's `text_pattern_ops`.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code in SURROGATES:
            code = SURROGATES.stop
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


@CharField.register_lookup
class Prefix(Lookup):  # type: ignore[type-arg]
    """`field__prefix=value`: the rows whose field starts with `value`, as an index range.

    Under row-level security the planner applies a query's conditions ahead of the policy's only
    when their operators are leakproof. LIKE (Django's `startswith`) is not, so a name search under
    RLS read every row of the business (16.9 ms for 200,000 clients). PostgreSQL's `^@` is, but
    it becomes an index range only when the prefix is a constant at planning time, which a
    prepared statement's generic plan does not have. So the range is spelt out with the leakproof
    pattern operators `~>=~` and `~<~`, which a `text_pattern_ops` index serves with any
    parameter (0.5 ms), and `^@` keeps the answer exact.
    """

    lookup_name = "prefix"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        prefix = str(self.rhs)
        conditions = [f"{lhs} ~>=~ %s", f"{lhs} ^@ %s"]
        params = [*lhs_params, prefix, *lhs_params, prefix]
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            conditions.insert(1, f"{lhs} ~<~ %s")
            params[len(lhs_params) + 1 : len(lhs_params) + 1] = [*lhs_params, upper]
        return "(" + " AND ".join(conditions) + ")", params
