"""Environments and installing into them.

- ``environment``: which interpreter and directories a command targets (and facts about it).
- ``venv``: ``kea venv``.
- ``plan``: wanted vs installed.
- ``link``: clone/hardlink/copy/symlink files out of the cache's archives.
- ``wheel``: stage one unpacked wheel for a scheme (RECORD, INSTALLER, scripts, .data).
- ``transaction``: swap staged packages into place so each is fully old or fully new.
- ``uninstall``: remove by RECORD.
"""
