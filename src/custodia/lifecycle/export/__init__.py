"""Exports: "your data is yours" (docs/export.md).

A whole-business export (an owner's, from a page, the API or `custodia export create`) and a
client's own-data download (the portal) are the same archive: a zip with one CSV and one JSON file
per entity, a README describing every file and column, and a manifest of sha256 sums signed with
the audit Ed25519 key. `archive.py` builds and checks it, `entities.py` says what it holds,
`access.py` reads the rows (recording each bulk read), `actions.py` starts, finishes and hands
out a business export, `storage.py` keeps the finished file encrypted until then.
"""
