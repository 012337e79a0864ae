"""Errors of the dataset readers: ``ValueError``s, so ``except ValueError`` still catches them."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset that cannot be read completely: missing or corrupt file, wrong layout,
    values that disagree with the dataset's own metadata. The message names the file.
    Readers raise it before returning anything: a dataset is described completely or not
    at all."""


class LayoutError(DatasetError):
    """The path is not (or not entirely) in the layout the reader was asked for."""


def missing_keys_error(kind: str, missing, available, where) -> KeyError:
    """``KeyError`` for requested keys a dataset does not have, listing the ones it has."""
    return KeyError(f"{kind} {sorted(missing)} not in {where}; it has {sorted(available)}")


def install_hint(extra: str, package: str) -> str:
    return f"this reader needs the {package} package: pip install 'jax_robocache[{extra}]'"
