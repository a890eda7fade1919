"""Connectors turn sources into parsed Documents. Files are the first; web and SQL follow."""

from ragkit.connectors.files import SUPPORTED_SUFFIXES, discover_files, parse_file

__all__ = ["SUPPORTED_SUFFIXES", "discover_files", "parse_file"]
