"""Failure hints that need another look at the indexes (the provider bridge, after a failure).

Under ``--index-strategy first-index`` only the first index that has a project is used, so a
version that would have solved the failure may sit on a later index. After a failure, the
packages named in the explanation are looked up on the other indexes; a version found there and
not on the first one becomes a hint naming that index and the strategy that would consider it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.version import Version

import kea.log
from kea.auth.redact import redact_url
from kea.errors import KeaError
from kea.resolver.provider_select import CandidatePolicy, Selection, select_candidates

log = kea.log.get("kea.resolver.provider")

MAX_PACKAGES = 5  # packages looked up again after a failure


async def other_index_hints(
    explanation: str,
    selections: Mapping[str, Selection],
    source: Any,
    policy: CandidatePolicy,
) -> list[str]:
    """Hints for packages of ``explanation`` that have other versions on a later index."""
    if getattr(source, "strategy", None) != "first-index":
        return []
    indexes: Sequence[Any] = getattr(source, "indexes", ())
    if len(indexes) < 2 or not hasattr(source, "index_page"):
        return []
    hints: list[str] = []
    named = [
        sel
        for name, sel in sorted(selections.items())
        if sel.candidates and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", explanation)
    ]
    for sel in named[:MAX_PACKAGES]:
        have = {c.version for c in sel.candidates}
        used = {p.url for p in sel.pages}
        for index in indexes:
            base = index.url.rstrip("/") + "/"
            if any(url.startswith(base) for url in used):
                continue
            try:
                page = await source.index_page(index.url, sel.name)
            except KeaError as e:  # an unreachable or refusing index: no hint from it
                log.debug("%s: no hint from %s: %s", sel.name, redact_url(index.url), e)
                continue
            if page is None:
                continue
            found = select_candidates(sel.name, [page], policy).candidates
            extra = sorted({c.version for c in found} - have, reverse=True)
            if extra:
                hints.append(_hint(sel.name, extra, index.url))
                break
    return hints


def _hint(name: str, versions: list[Version], index_url: str) -> str:
    shown = ", ".join(str(v) for v in versions[:3]) + (", ..." if len(versions) > 3 else "")
    return (
        f"{name} has other versions ({shown}) on {redact_url(index_url)}, which "
        "--index-strategy first-index does not consider (only the first index that has "
        f"{name} is used); pass --index-strategy unsafe-best-match to consider every index"
    )
