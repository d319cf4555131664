import pytest

from kea.auth.urls import (
    Origin,
    host_of,
    hostport_of,
    index_root,
    is_under,
    origin_of,
    path_as_sent,
    path_under,
    split_userinfo,
)
from kea.errors import UsageError


@pytest.mark.parametrize(
    ("index", "root"),
    [
        ("https://h/api/pypi/x/simple", "https://h/api/pypi/x"),
        ("https://h/api/pypi/x/simple/", "https://h/api/pypi/x"),
        ("https://u:p@H/root/pypi/+simple/", "https://h/root/pypi"),
        ("https://h/simple", "https://h"),
        ("https://h/", "https://h"),
        ("https://h/simplex/", "https://h/simplex"),
        ("http://h:8080/a/simple", "http://h:8080/a"),
    ],
)
def test_index_root(index: str, root: str) -> None:
    assert index_root(index) == root


@pytest.mark.parametrize(
    ("path", "prefix", "under"),
    [
        ("/simple", "/simple", True),
        ("/simple/x", "/simple", True),
        ("/simple/x", "/simple/", True),
        ("/simpleevil", "/simple", False),
        ("/simpleevil/x", "/simple", False),
        ("/anything", "", True),
        ("/anything", "/", True),
        ("/a/b", "/a/b/c", False),
    ],
)
def test_path_under_is_segment_bounded(path: str, prefix: str, under: bool) -> None:
    assert path_under(path, prefix) is under


@pytest.mark.parametrize(
    ("url", "root", "under"),
    [
        ("https://h/a/simple/pkg/", "https://h/a", True),
        ("https://h/a/packages/f.whl", "https://h/a", True),
        ("https://h/ab/simple/", "https://h/a", False),
        ("https://h:443/a/x", "https://h/a", True),  # default port filled in
        ("https://h:8443/a/x", "https://h/a", False),  # other port, other origin
        ("http://h/a/x", "https://h/a", False),  # other scheme, other origin
        ("https://H/a/x", "https://h/a", True),  # host case-insensitive
    ],
)
def test_is_under(url: str, root: str, under: bool) -> None:
    assert is_under(url, root) is under


def test_split_userinfo_variants() -> None:
    s = split_userinfo("https://alice:s%40cret@h:8443/simple/?x=1")
    assert (s.url, s.username, s.password) == ("https://h:8443/simple/?x=1", "alice", "s@cret")
    tok = split_userinfo("https://TOKEN@h/simple/")
    assert (tok.url, tok.username, tok.password) == ("https://h/simple/", "TOKEN", None)
    empty = split_userinfo("https://u:@h/")
    assert (empty.username, empty.password) == ("u", "")
    plain = split_userinfo("https://h/x")
    assert plain.url == "https://h/x" and not plain.has_userinfo


def test_confusable_authority_is_parsed_properly() -> None:
    # The host is what follows the LAST "@": a.example is only a username here.
    url = "http://a.example:@evil.example/simple/"
    assert host_of(url) == "evil.example"
    s = split_userinfo(url)
    assert s.url == "http://evil.example/simple/"
    assert s.username == "a.example"
    assert origin_of(url) == Origin("http", "evil.example", 80)


def test_origin_and_hostport() -> None:
    assert origin_of("https://H.example/x") == Origin("https", "h.example", 443)
    assert str(origin_of("https://h.example:443/")) == "https://h.example"
    assert str(origin_of("http://127.0.0.2:8080/")) == "http://127.0.0.2:8080"
    assert hostport_of("https://h.example/x") == "h.example"
    assert hostport_of("https://h.example:8443/x") == "h.example:8443"
    with pytest.raises(UsageError):
        origin_of("https:///nohost")
    with pytest.raises(UsageError):
        origin_of("https://h:99999/")


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://h/b/../a/x.whl", "http://h/a/x.whl"),
        ("http://h/b/%2e%2E/a/x", "http://h/a/x"),  # as aiohttp (yarl) sends it
        ("http://h/b/./a", "http://h/b/a"),
        ("http://h/a/b/..", "http://h/a/"),
        ("http://h/a/b/../../..", "http://h/"),
        ("http://h/..//a", "http://h//a"),
        ("https://H:8443/A/../B?q=/../x#f", "https://H:8443/B?q=/../x#f"),  # the rest as it was
        ("http://h/a.b/c..d/.../x", "http://h/a.b/c..d/.../x"),  # not dot segments
        ("http://h/b/..%2fa", "http://h/b/..%2Fa"),  # one segment: "..%2Fa"
        ("http://h/%62/files/x", "http://h/b/files/x"),  # an unreserved letter, escaped
        ("http://h/%7Eu/%2D%5F/x", "http://h/~u/-_/x"),
        ("http://h/a%20b/%c3%a9", "http://h/a%20b/%C3%A9"),  # others stay escaped
        ("http://h/%41b%2e%2E/x", "http://h/Ab../x"),  # "Ab.." is no dot segment
        ("http://h/plain/path?q=%61", "http://h/plain/path?q=%61"),
    ],
)
def test_path_as_sent_gives_the_path_the_server_sees(url: str, sent: str) -> None:
    import yarl

    assert path_as_sent(url) == sent
    assert yarl.URL(path_as_sent(url)).raw_path == yarl.URL(url).raw_path  # as aiohttp sends
