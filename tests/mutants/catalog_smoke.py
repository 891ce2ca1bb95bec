"""Mutants that check the runner itself: one caught by tests, one by a chapter only."""

from tests.mutants.run import Mutant

MUTANTS = [
    Mutant("smoke-sq-euclid-sign", "w2sg_utils/divergences.py",
           "        return rowsum((u - v) ** 2)", "        return -rowsum((u - v) ** 2)",
           tests=("tests/test_divergences.py",), why="a sign"),
    Mutant("smoke-sq-euclid-sign-chapter", "w2sg_utils/divergences.py",
           "        return rowsum((u - v) ** 2)", "        return -rowsum((u - v) ** 2)",
           tests=(), chapter="ch01_bregman", why="the same sign, caught by Chapter 1 alone"),
]
