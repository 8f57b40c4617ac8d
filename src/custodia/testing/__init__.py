"""Harnesses for the tests, the benchmarks and the attack scans; none of it serves requests."""
