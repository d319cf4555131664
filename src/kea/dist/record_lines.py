"""A RECORD's lines, split without ``csv`` where that reads it as ``csv`` would.

Nearly every wheel writes RECORD without quoting, and then no field holds a comma or a line
break: splitting at line breaks and commas gives ``csv``'s rows, several times faster. Used by
the unpacking workers (``kea.cache.archive``) and by the install layout (``kea.dist.record``);
the workers import it, so it imports nothing.
"""


def plain_lines(text: str) -> list[str] | None:
    """``text``'s lines (a ``\\r\\n`` ending cut), or None when a CSV parser must read it: a
    quote, or a ``\\r`` that does not end a line."""
    if '"' in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    return text.split("\n")
