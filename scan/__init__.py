"""External attack scanners run against a live instance: `make scan`."""
