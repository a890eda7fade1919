"""The package version, in its own module so that engine modules can read it without importing `ragkit`."""

__version__ = "0.1.0"
