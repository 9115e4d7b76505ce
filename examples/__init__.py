"""Toy recurrent-network examples the project grew from, rebuilt on `training.cells.Recurrent`.

Run one from the repository root with `python -m examples.hihell` or `python examples/hihell.py`.
"""
