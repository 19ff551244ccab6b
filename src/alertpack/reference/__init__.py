"""Straightforward reference implementations: the oracle for the fast paths in tests and the baseline in benchmarks."""  # noqa: E501
