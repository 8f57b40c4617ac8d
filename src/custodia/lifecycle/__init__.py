"""The data's life after it is written: backups and restores (and, to come, export, closing a
business, erasure and retention)."""
