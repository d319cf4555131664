"""Credentials: where they come from, which request gets which, and how they are hidden."""
