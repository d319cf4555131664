from pathlib import Path

import pytest

from kea.auth.netrc import NetrcSyntaxError, load_netrc, parse_netrc


def test_first_machine_entry_wins_like_curl() -> None:
    text = "machine h.example login first password one\n"
    text += "machine h.example login second password two\n"
    n = parse_netrc(text)
    entry = n.machine("h.example")
    assert entry is not None and (entry.login, entry.password) == ("first", "one")
    # With a known username only an entry whose login matches is used.
    by_login = n.machine("H.EXAMPLE", login="second")
    assert by_login is not None and by_login.password == "two"
    assert n.machine("h.example", login="nobody") is None
    assert n.machine("other.example") is None


def test_default_entry_is_separate_from_machines() -> None:
    n = parse_netrc("default login anon password dflt\nmachine a login u password p\n")
    assert n.machine("zzz") is None
    d = n.default()
    assert d is not None and (d.login, d.password) == ("anon", "dflt")
    assert n.default(login="other") is None


def test_one_line_and_multi_line_layouts_quotes_and_comments() -> None:
    text = """
# a comment line
machine one.example
    login "user name"
    password "pa ss\\"word"   # trailing comment
machine two.example login u2 password p#2
"""
    n = parse_netrc(text)
    one = n.machine("one.example")
    assert one is not None and one.login == "user name" and one.password == 'pa ss"word'
    two = n.machine("two.example")
    assert two is not None and two.password == "p#2"


def test_macdef_body_is_skipped() -> None:
    text = (
        "machine a login ua password pa\n"
        "macdef init\n"
        "machine evil login x password y\n"
        "cd /pub\n"
        "\n"
        "machine b login ub password pb\n"
    )
    n = parse_netrc(text)
    assert n.machine("evil") is None
    b = n.machine("b")
    assert b is not None and b.password == "pb"


def test_unknown_words_and_account_are_tolerated() -> None:
    n = parse_netrc("machine a port 443 login u password p account acct\n")
    a = n.machine("a")
    assert a is not None and (a.login, a.password, a.account) == ("u", "p", "acct")


def test_login_without_password_is_a_username_only_entry() -> None:
    n = parse_netrc("machine a login onlyuser\n")
    a = n.machine("a")
    assert a is not None and a.login == "onlyuser" and a.password is None


@pytest.mark.parametrize(
    "text",
    [
        'machine a login u password "unterminated\n',
        "machine a login u password",
        "machine\n",
        "machine a login password p\n",
    ],
)
def test_malformed_raises_syntax_error(text: str) -> None:
    with pytest.raises(NetrcSyntaxError):
        parse_netrc(text)


def test_load_missing_file_is_empty_and_silent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = load_netrc(tmp_path / "nope")
    assert n.entries == ()
    assert capsys.readouterr().err == ""


def test_load_malformed_file_warns_once_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "netrc-bad-unique"
    path.write_text('machine a login u password "s3cr3t\n')
    assert load_netrc(path).entries == ()
    assert load_netrc(path).entries == ()
    err = capsys.readouterr().err
    assert err.count("warning: ignoring malformed netrc") == 1
    assert str(path) in err
    assert "s3cr3t" not in err


def test_load_directory_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "netrc-dir"
    d.mkdir()
    assert load_netrc(d).entries == ()
    assert "cannot read netrc" in capsys.readouterr().err


def test_load_reads_real_file(tmp_path: Path) -> None:
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.2 login bob password hunter2\n")
    entry = load_netrc(path).machine("127.0.0.2")
    assert entry is not None and entry.login == "bob"
