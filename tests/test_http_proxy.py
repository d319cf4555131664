import pytest

from kea.errors import UsageError
from kea.http.proxy import ProxyConfig, bypass


def test_scheme_specific_and_all_proxy() -> None:
    cfg = ProxyConfig.from_env(
        {"HTTPS_PROXY": "http://user:pw@proxy.example:3128", "ALL_PROXY": "fallback:8080"}
    )
    https = cfg.for_url("https://pypi.example/simple/")
    assert https is not None
    assert https.url == "http://proxy.example:3128"  # userinfo moved out of the URL
    assert https.credentials is not None
    assert (https.credentials.username, https.credentials.password) == ("user", "pw")
    assert https.source == "HTTPS_PROXY"
    http = cfg.for_url("http://pypi.example/simple/")
    assert http is not None and http.url == "http://fallback:8080" and http.credentials is None


def test_lower_case_wins() -> None:
    cfg = ProxyConfig.from_env({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"})
    p = cfg.for_url("https://x/")
    assert p is not None and p.url == "http://lower:1"


def test_no_proxy_entries() -> None:
    cfg = ProxyConfig.from_env(
        {"HTTPS_PROXY": "http://p:1", "no_proxy": "internal.example, .corp.example,10.0.0.0/8"}
    )
    assert cfg.for_url("https://internal.example/") is None
    assert cfg.for_url("https://a.internal.example/") is None
    assert cfg.for_url("https://x.corp.example/") is None
    assert cfg.for_url("https://10.2.3.4/") is None
    assert cfg.for_url("https://notinternal.example/") is not None
    assert cfg.for_url("https://11.0.0.1/") is not None


@pytest.mark.parametrize(
    ("host", "port", "entries", "expected"),
    [
        ("h", 443, ("*",), True),
        ("h", 443, ("h:443",), True),
        ("h", 8443, ("h:443",), False),
        ("127.0.0.5", 80, ("127.0.0.0/8",), True),
        ("::1", 80, ("[::1]",), True),
        ("evilh", 80, ("h",), False),
    ],
)
def test_bypass(host: str, port: int, entries: tuple[str, ...], expected: bool) -> None:
    assert bypass(host, port, entries) is expected


def test_no_proxy_configured() -> None:
    assert ProxyConfig.from_env({}).for_url("https://x/") is None


def test_unsupported_proxy_scheme_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as e:
        ProxyConfig.from_env({"HTTPS_PROXY": "socks5://u:secret@p:1080"})
    assert "secret" not in str(e.value)
    assert "socks5" in str(e.value)
