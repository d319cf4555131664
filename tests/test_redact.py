import pytest

from kea.auth.redact import holds_secret, query_has_signature, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p4ss@h/simple/", "https://u:****@h/simple/"),
        ("https://tok3n@h/simple/", "https://****@h/simple/"),
        ("https://:p4ss@h/", "https://****@h/"),
        ("https://h/f.whl?X-Amz-Signature=abc&x=1", "https://h/f.whl?X-Amz-Signature=****&x=1"),
        ("https://h/f?sv=1&sig=s3cr3t", "https://h/f?sv=1&sig=****"),
        ("https://h/simple/", "https://h/simple/"),
        # mistyped: the parser finds no userinfo, so all up to the last "@" goes
        ("http:/u:p4ss@h/simple/", "http:/****@h/simple/"),
        ("http:u:p4ss@h/simple/", "http:****@h/simple/"),
        ("u:p4ss@h:8080/simple/", "u:****@h:8080/simple/"),
        ("tok3n@h/simple/", "****@h/simple/"),
        ("http://u:p4/ss@h/simple/", "http://****@h/simple/"),
        ("http://u:p4#ss@h/simple/", "http://****@h/simple/"),
        ("http://u:p4?ss@h/simple/?token=t0k", "http://****@h/simple/?token=****"),
        ("git+https://h/repo.git@v1", "git+https://****@v1"),  # over-masked, never leaked
        # a password cut at an unencoded "#" or "?" before kea quoted it: its start is no port
        ("http://u:p4", "http://u:****"),
        ("http://[::1]:8080/simple/", "http://[::1]:8080/simple/"),
        ("http://[::1]/simple/", "http://[::1]/simple/"),
        ("http://[::1:bad/x", "http://****/x"),  # no parse: the whole authority goes
        ("https://u:p4ss\uff20h/simple/", "https://****/simple/"),  # a full-width @
        # nothing masked: the text as it was (not lower-cased, no "?" dropped)
        ("C:\\Users\\me\\x.whl", "C:\\Users\\me\\x.whl"),
        ("HTTPS://H/simple/?", "HTTPS://H/simple/?"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_finds_urls_and_headers() -> None:
    text = "GET https://alice:s3cret@h/x -> Authorization: Basic YWxpY2U6czNjcmV0"
    out = redact_text(text)
    assert "s3cret" not in out
    assert "YWxpY2U6czNjcmV0" not in out
    assert "https://alice:****@h/x" in out


def test_redact_text_finds_mistyped_urls() -> None:
    text = r"error: URL http:///alice:s3cret@h/x has no host; GET http:\\bob:t0ken@h/y"
    out = redact_text(text)
    assert "s3cret" not in out and "t0ken" not in out
    assert "http:///****@h/x" in out


@pytest.mark.parametrize(
    ("text", "shown", "secret"),
    [
        ("error: 'http://al:pa'ss@h/simple' x", "error: 'http://al:****@h/simple' x", "ss@"),
        ("GET `http://al:pa`ss@h/x`", "GET `http://al:****@h/x`", "ss@"),
        ("GET http://al:pa ss@h/x failed", "GET http://al:****@h/x failed", "ss@"),
        ('GET "http://al:pa"ss@h/x"', 'GET "http://al:****@h/x"', "ss@"),
        ("GET http://al ice:pw@h/x", "GET http://al ice:****@h/x", "pw"),  # a space in the username
        ("GET http://al:pa ss@w@h/x", "GET http://al:****@h/x", "w@h"),  # an "@" in it too
        ("GET http://al:12 34@h/x", "GET http://al:****@h/x", "34"),  # cut after digits
        ("GET http://al:pa ss/x@h/y", "GET http://****@h/y", "ss/x"),  # a "/" after the cut
        ("GET http://al:p@ss word@h/x", "GET http://al:****@h/x", "word"),  # "@", then a space
    ],
)
def test_redact_text_masks_a_password_that_cuts_its_url(text: str, shown: str, secret: str) -> None:
    """A quote, a backtick or a space ends a URL in free text; in a password (unencoded) it
    left the rest of the password in clear."""
    out = redact_text(text)
    assert out == shown
    assert secret not in out


@pytest.mark.parametrize(
    "text",
    [
        "see http://example.com and mail bob@example.org",  # no ":" before the "@"
        "GET 'http://h/x' as 'a:b@c'",  # the URL has a path: it ended there
    ],
)
def test_redact_text_leaves_text_after_a_whole_url_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redact_text_masks_what_might_be_a_password_cut_after_digits() -> None:
    """A URL that ended at its port cannot be told from ``u:12 34@h``: masked, the safe side."""
    assert redact_text("http://host:8080 is down; ask me:at@x") == "http://host:****@x"


def test_redact_text_looks_for_the_userinfo_end_on_the_same_line_only() -> None:
    assert redact_text("GET http://h:abc\nuser:pw@other") == "GET http://h:****\nuser:pw@other"


def test_signature_detection() -> None:
    assert query_has_signature("https://b/f?X-Amz-Credential=a&X-Amz-Signature=b")
    assert query_has_signature("https://b/f?sv=1&sig=x")
    assert not query_has_signature("https://b/f?x=1")


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://h/f.whl", False),
        ("https://h:8080/f.whl?x=1", False),
        ("https://u:p@h/f.whl", True),
        ("https://tok@h/f.whl", True),
        ("https://h/f.whl?X-Amz-Signature=s", True),
        ("http:/u:p@h/f.whl", True),
    ],
)
def test_holds_secret_is_what_redaction_would_mask(url: str, secret: bool) -> None:
    assert holds_secret(url) is secret


def test_holds_secret_sees_a_password_cut_into_the_port() -> None:
    assert holds_secret("http://u:p4ss")
    assert not holds_secret("http://127.0.0.1:8731/files/a-1.0-py3-none-any.whl")
