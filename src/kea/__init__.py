"""kea: a fast Python package installer that gets private indexes right."""

__version__ = "0.1.0"
