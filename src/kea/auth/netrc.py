"""A tolerant netrc reader with curl's rules (the first matching ``machine`` wins).

The standard library's ``netrc`` keeps the *last* entry for a host and rejects files that curl
reads fine; kea wants curl's behaviour. Supported: ``machine``, ``default``, ``login``,
``password``, ``account``, ``macdef`` (its body is skipped up to the next empty line), ``#``
comments, double-quoted tokens with backslash escapes. Unknown words are skipped.

``load_netrc`` never raises: an unreadable or malformed file gives a warning (once per run) and
no entries, so a broken netrc never breaks an install that does not need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

import kea.log

log = kea.log.get("kea.auth.netrc")


class NetrcSyntaxError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"{message} (line {line})")
        self.line = line


class NetrcEntry(msgspec.Struct, frozen=True):
    """One ``machine`` (or ``default`` when ``machine`` is None) entry. ``repr`` shows neither
    the password nor the account."""

    machine: str | None
    login: str | None = None
    password: str | None = None
    account: str | None = None

    def __repr__(self) -> str:
        return f"NetrcEntry(machine={self.machine!r}, login={self.login!r})"


class Netrc(msgspec.Struct, frozen=True):
    entries: tuple[NetrcEntry, ...] = ()
    path: Path | None = None

    def machine(self, host: str, login: str | None = None) -> NetrcEntry | None:
        """The first ``machine`` entry for ``host`` (case-insensitive); with ``login``, the first
        whose login matches."""
        host = host.lower()
        for entry in self.entries:
            if entry.machine is None or entry.machine.lower() != host:
                continue
            if login is not None and entry.login != login:
                continue
            return entry
        return None

    def default(self, login: str | None = None) -> NetrcEntry | None:
        """The ``default`` entry (first one), with ``login`` only when its login matches."""
        for entry in self.entries:
            if entry.machine is None and (login is None or entry.login == login):
                return entry
        return None


_KEYWORDS = frozenset({"machine", "default", "login", "password", "account", "macdef"})


def _tokens(text: str) -> Iterator[tuple[str, int, bool]]:
    """Yield (token, line number, was_quoted); skips comments and macdef bodies."""
    i = 0
    n = len(text)
    line = 1
    skip_macdef = False
    while i < n:
        c = text[i]
        if skip_macdef:
            # The macro body runs up to (and including) the next empty or blank line.
            while i < n:
                nl = text.find("\n", i)
                body_line = text[i:] if nl == -1 else text[i:nl]
                i = n if nl == -1 else nl + 1
                line += 1
                if not body_line.strip():
                    break
            skip_macdef = False
            continue
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if c == "#":
            nl = text.find("\n", i)
            i = n if nl == -1 else nl
            continue
        if c == '"':
            start_line = line
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise NetrcSyntaxError("unterminated quoted string", start_line)
                c = text[i]
                if c == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    buf.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                if c == "\n":
                    line += 1
                buf.append(c)
                i += 1
            yield "".join(buf), start_line, True
            continue
        start = i
        while i < n and text[i] not in " \t\r\n\f\v":
            i += 1
        word = text[start:i]
        yield word, line, False
        if word == "macdef":
            # The macro name follows on the same line; the body starts on the next line.
            nl = text.find("\n", i)
            if nl == -1:
                return
            name = text[i:nl].strip()
            if not name:
                raise NetrcSyntaxError("macdef without a name", line)
            i = nl + 1
            line += 1
            skip_macdef = True


def parse_netrc(text: str, path: Path | None = None) -> Netrc:
    """Parse netrc text; raises NetrcSyntaxError for what cannot be read safely."""
    entries: list[NetrcEntry] = []
    current: dict[str, str | None] | None = None
    tokens = _tokens(text)

    def value_for(keyword: str, line: int) -> str:
        try:
            tok, _, quoted = next(tokens)
        except StopIteration:
            raise NetrcSyntaxError(f"`{keyword}` without a value", line) from None
        if not quoted and tok in _KEYWORDS:
            raise NetrcSyntaxError(f"`{keyword}` followed by keyword `{tok}`", line)
        return tok

    def close() -> None:
        if current is not None:
            entries.append(
                NetrcEntry(
                    machine=current["machine"],
                    login=current.get("login"),
                    password=current.get("password"),
                    account=current.get("account"),
                )
            )

    for tok, line, quoted in tokens:
        if quoted:
            continue  # a stray quoted word outside any keyword: skip it
        if tok == "machine":
            close()
            current = {"machine": value_for("machine", line)}
        elif tok == "default":
            close()
            current = {"machine": None}
        elif tok in ("login", "password", "account"):
            value = value_for(tok, line)
            if current is not None and current.get(tok) is None:
                current[tok] = value
        elif tok == "macdef":
            continue  # body already skipped by the tokenizer
        # anything else (``port 443``, typos) is skipped, as curl does
    close()
    return Netrc(tuple(entries), path)


def load_netrc(path: Path | None) -> Netrc:
    """Read and parse ``path``; a missing file is an empty Netrc, a broken one warns once."""
    if path is None:
        return Netrc()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        log.log(5, "no netrc at %s", path)
        return Netrc(path=path)
    except IsADirectoryError:
        _warn(f"cannot read netrc {path}: it is a directory; going on without it")
        return Netrc(path=path)
    except OSError as e:
        _warn(f"cannot read netrc {path}: {e.strerror or e}; going on without it")
        return Netrc(path=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        parsed = parse_netrc(text, path)
    except NetrcSyntaxError as e:
        _warn(f"ignoring malformed netrc {path}: {e}")
        return Netrc(path=path)
    log.log(5, "netrc %s: %d entries", path, len(parsed.entries))
    return parsed


def _warn(message: str) -> None:
    from kea.cli.output import warn

    warn(message)


__all__ = ["Netrc", "NetrcEntry", "NetrcSyntaxError", "load_netrc", "parse_netrc"]
