"""Independent numpy float64 references of the ops, one module per op.

Written from the contracts (docs/ops/), never from the jnp twins: a
disagreement means one of the two is wrong. Used by the op tests, the golden
files (tests/golden_cases.py), the sharding tests and the fuzz tests.
"""
