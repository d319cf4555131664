"""Project and extra names in their normal form (PEP 503).

packaging has ``canonicalize_name`` too, in ``packaging.utils``; importing that module imports
``packaging.tags`` (with ``subprocess``, ``sysconfig`` and the ELF readers), about 8 ms that
commands answered from the cache, where no wheel tag is looked at, do not otherwise pay.
"""

from __future__ import annotations

import re
from functools import lru_cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from packaging.utils import NormalizedName

_RUNS = re.compile(r"[-_.]+")


# Answers given before, by spelling: a warm jupyter --dry-run asks ~1,500 times about ~200
# spellings (callgrind: 246.3 M -> 242.6 M instructions). Bounded, so a long-lived process
# (kea serve) that is asked about ever new names stays small.
@lru_cache(maxsize=4096)
def canonicalize_name(name: str) -> NormalizedName:
    """``Foo.Bar_baz`` → ``foo-bar-baz``: runs of ``-``, ``_`` and ``.`` become one ``-``."""
    return _RUNS.sub("-", name).lower()  # type: ignore[return-value]
