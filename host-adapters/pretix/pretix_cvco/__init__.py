"""Chèque-Vacances Connect for pretix: a payment provider and the cvco merchant HTTP contract."""

__version__ = "0.1.0"
