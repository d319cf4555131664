"""The ``kea`` command line: click commands, output and hints."""
