"""Errors that name the metadata row or file at fault, so users can fix their input."""

from __future__ import annotations


class DataMeshError(Exception):
    """Base of data_mesh's own errors."""


class MetadataError(DataMeshError, ValueError):
    """A metadata row or product file that is invalid; the message names the row/file and field."""


class QueryFileError(DataMeshError, ValueError):
    """A `.properties` query or sequence file that is malformed or holds a forbidden statement."""
