"""The package version (its own module, so that modules the package root re-exports can
record it without importing the root)."""

__version__ = "0.1.0"
