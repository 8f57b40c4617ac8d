"""Django's cache for rate limits and second-factor replay markers: Redis when
`CUSTODIA_REDIS_URL` is set, else an UNLOGGED PostgreSQL table (backend.py); keys and values
shared by both (keys.py)."""
