from __future__ import annotations

from custodia.clients.access import list_clients
from tests.acting import act


def test_matrix_builds_and_isolates(matrix):
    act(matrix.a.owner)
    assert {c.name for c in list_clients(matrix.a.owner)} == {"Alpha Client", "Alpha Other"}
    act(matrix.a.staff)
    assert [c.name for c in list_clients(matrix.a.staff)] == ["Alpha Client"]
