"""bnlab: a reproducible experiment harness for Batch Normalization."""

__version__ = "0.1.0"
