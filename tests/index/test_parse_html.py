# ruff: noqa: E501  (real-world-shaped HTML fixtures keep their long lines)
"""PEP 503 HTML parsing on pages shaped like the ones real servers produce."""

from __future__ import annotations

import pytest

from kea.errors import KeaError
from kea.index.html import parse_project_html, parse_root_html
from kea.index.page import ACCEPT, parse_project_page

SHA = "a" * 64
META_SHA = "b" * 64

PYPISERVER = f"""<!DOCTYPE html>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Links for demo</title>
    </head>
    <body>
        <h1>Links for demo</h1>
            <a href="/simple/demo/../../packages/demo-1.0-py3-none-any.whl#sha256={SHA}">demo-1.0-py3-none-any.whl</a><br>
            <a href="/simple/demo/../../packages/demo-1.1.tar.gz#sha256={SHA}">demo-1.1.tar.gz</a><br>
    </body>
</html>
"""

SIMPLEINDEX = """
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
</head>
<body>
<a href="./demo-2.0-py3-none-any.whl">demo-2.0-py3-none-any.whl</a>
<a href="./demo-2.0.tar.gz">demo-2.0.tar.gz</a>
</body>
</html>
"""

# devpi: absolute links to a +f/ store, hash fragment, requires-python escaped.
DEVPI = f"""<!DOCTYPE html><html><head><title>root/pypi/: links for demo</title></head><body>
<h1>root/pypi/: links for demo</h1>
<a data-requires-python="&gt;=3.8" href="../../+f/aaa/bbbbbb/demo-3.0-py3-none-any.whl#sha256={SHA}">root/pypi/demo-3.0-py3-none-any.whl</a><br/>
<a data-requires-python="&gt;=3.7,&lt;4" href="../../+f/ccc/dddddd/demo-2.9.zip#md5=0123456789abcdef0123456789abcdef">root/pypi/demo-2.9.zip</a><br/>
</body></html>"""

# Artifactory: <base href> pointing elsewhere, relative links against it, metadata attributes.
ARTIFACTORY = f"""<html>
<head>
  <title>Links for demo</title>
  <base href="https://art.example/artifactory/api/pypi/pypi-remote/"/>
</head>
<body>
<h1>Links for demo</h1>
<a href="../../pypi-remote/packages/packages/aa/bb/demo-4.0-py3-none-any.whl#sha256={SHA}" data-requires-python="&gt;=3.9" data-core-metadata="sha256={META_SHA}" rel="internal">demo-4.0-py3-none-any.whl</a><br/>
<a href="../../pypi-remote/packages/packages/aa/bb/demo-3.9-py3-none-any.whl#sha256={SHA}" data-dist-info-metadata="true" data-yanked="">demo-3.9-py3-none-any.whl</a><br/>
<a href="../../pypi-remote/packages/packages/aa/bb/demo-3.8-py3-none-any.whl" data-yanked="broken &amp; bad">demo-3.8-py3-none-any.whl</a><br/>
</body>
</html>"""


def test_accept_prefers_json_then_html() -> None:
    parts = [p.strip() for p in ACCEPT.split(",")]
    assert parts[0] == "application/vnd.pypi.simple.v1+json"
    assert parts[1].startswith("application/vnd.pypi.simple.v1+html;q=")
    assert parts[2].startswith("text/html;q=")


def test_pypiserver_page() -> None:
    page = parse_project_html(PYPISERVER, "http://127.0.0.1:8080/simple/demo/")
    assert page.name == "demo"
    assert [f.filename for f in page.files] == ["demo-1.0-py3-none-any.whl", "demo-1.1.tar.gz"]
    f = page.files[0]
    assert f.url == "http://127.0.0.1:8080/packages/demo-1.0-py3-none-any.whl"
    assert f.hashes == {"sha256": SHA}
    assert not f.is_yanked and not f.has_metadata_file and f.requires_python is None
    assert f.wheel_info is not None and str(f.wheel_info[1]) == "1.0"
    assert str(page.files[1].version) == "1.1"


def test_relative_links_use_the_final_url_of_the_redirect_chain() -> None:
    # simpleindex redirects /simple/demo/ elsewhere; "./x" resolves against where we landed.
    page = parse_project_html(SIMPLEINDEX, "http://127.0.0.2:9000/upstream/demo/")
    assert page.files[0].url == "http://127.0.0.2:9000/upstream/demo/demo-2.0-py3-none-any.whl"
    assert page.files[0].hashes == {}


def test_devpi_page_unescapes_requires_python_and_keeps_other_hashes() -> None:
    page = parse_project_html(DEVPI, "https://devpi.example/root/pypi/+simple/demo/")
    assert page.files[0].requires_python == ">=3.8"
    assert page.files[1].requires_python == ">=3.7,<4"
    assert page.files[1].hashes == {"md5": "0123456789abcdef0123456789abcdef"}
    assert page.files[0].url == (
        "https://devpi.example/root/pypi/+f/aaa/bbbbbb/demo-3.0-py3-none-any.whl"
    )
    # The file name comes from the URL, not the anchor text devpi decorates.
    assert page.files[0].filename == "demo-3.0-py3-none-any.whl"


def test_artifactory_base_href_metadata_and_yanked() -> None:
    page = parse_project_html(
        ARTIFACTORY, "https://art.example/artifactory/api/pypi/x/simple/demo/"
    )
    f40, f39, f38 = page.files
    assert f40.url == (
        "https://art.example/artifactory/api/pypi-remote/packages/packages/aa/bb/"
        "demo-4.0-py3-none-any.whl"
    )
    assert f40.core_metadata == {"sha256": META_SHA}
    assert f40.metadata_url == f40.url + ".metadata"
    assert f40.requires_python == ">=3.9"
    assert f39.core_metadata is True  # the old PEP 658 attribute name
    assert f39.yanked is True and f39.yanked_reason is None
    assert f38.yanked == "broken & bad"
    assert f38.core_metadata is False


def test_core_metadata_wins_over_the_old_name() -> None:
    html = (
        '<a href="x-1.0-py3-none-any.whl" data-core-metadata="sha256=' + "c" * 64 + '"'
        ' data-dist-info-metadata="sha256=' + "d" * 64 + '">x</a>'
    )
    page = parse_project_html(html, "http://h/simple/x/")
    assert page.files[0].core_metadata == {"sha256": "c" * 64}


def test_unquoted_attrs_raw_gt_and_uppercase_tags() -> None:
    html = (
        "<HTML><BODY>"
        "<A HREF=x-1.0.tar.gz DATA-REQUIRES-PYTHON='>=3.6'>x-1.0.tar.gz</A>"
        '<a data-requires-python=">=3.10" href="x-2.0-py3-none-any.whl#SHA256=ABCDEF">x</a>'
        "</BODY></HTML>"
    )
    page = parse_project_html(html, "http://h/simple/x/")
    assert [f.requires_python for f in page.files] == [">=3.6", ">=3.10"]
    assert page.files[1].hashes == {"sha256": "abcdef"}


def test_comments_and_scripts_go_through_the_stdlib_parser() -> None:
    html = (
        "<html><!-- <a href='ghost-9.0.tar.gz'>ghost</a> -->"
        "<script>var s = '<a href=\"js-1.0.tar.gz\">';</script>"
        '<a href="real-1.0.tar.gz">real-1.0.tar.gz</a></html>'
    )
    page = parse_project_html(html, "http://h/simple/real/")
    assert [f.filename for f in page.files] == ["real-1.0.tar.gz"]


def test_url_encoded_filenames_are_decoded() -> None:
    page = parse_project_html('<a href="pkg%2Bx-1.0%2Blocal.tar.gz">x</a>', "http://h/simple/p/")
    assert page.files[0].filename == "pkg+x-1.0+local.tar.gz"


def test_empty_project_page_is_valid() -> None:
    page = parse_project_html("<html><body><h1>Links for x</h1></body></html>", "http://h/s/x/")
    assert page.files == []


def test_login_page_is_not_an_index_and_the_error_is_redacted() -> None:
    html = (
        "<html><head><title>Sign in</title></head><body><form action='/login' method='post'>"
        "<input name=user><input type='password' name=pw></form></body></html>"
    )
    with pytest.raises(KeaError) as e:
        parse_project_html(html, "https://user:s3cret@corp.example/simple/x/")
    msg = str(e.value)
    assert "not a package index page" in msg
    assert "s3cret" not in msg and "corp.example/simple/x/" in msg
    assert "\n" not in msg


def test_web_ui_page_with_only_navigation_links_is_not_an_index() -> None:
    html = '<html><body><a href="/">Home</a><a href="/docs">Docs</a></body></html>'
    with pytest.raises(KeaError, match="none to a distribution file"):
        parse_project_html(html, "https://corp.example/ui/x/")


def test_plain_text_is_not_an_index() -> None:
    with pytest.raises(KeaError, match="not HTML"):
        parse_project_page(b"Service Unavailable", "http://h/simple/x/", "text/html")


def test_missing_content_type_is_sniffed() -> None:
    page = parse_project_page(SIMPLEINDEX.encode(), "http://h/simple/demo/", None)
    assert len(page.files) == 2


def test_charset_and_bom() -> None:
    body = b"\xef\xbb\xbf" + '<a href="caf\u00e9-1.0.tar.gz">x</a>'.encode()
    page = parse_project_page(body, "http://h/simple/cafe/", "text/html; charset=utf-8")
    assert page.files[0].filename == "caf\u00e9-1.0.tar.gz"
    latin = '<a href="x-1.0.tar.gz" data-yanked="na\u00efve">x</a>'.encode("latin-1")
    page = parse_project_page(latin, "http://h/simple/x/", "text/html; charset=ISO-8859-1")
    assert page.files[0].yanked == "na\u00efve"


def test_root_page() -> None:
    html = '<html><body><a href="/simple/demo/">demo</a><a href="/simple/other/">Other</a>'
    root = parse_root_html(html, "http://h/simple/")
    assert root.names == ["demo", "Other"]


def test_big_page_parses_fast() -> None:
    import time

    rows = "\n".join(
        f'<a href="../../p/pkg-{i}.0-py3-none-any.whl#sha256={SHA}" '
        f'data-requires-python="&gt;=3.8" data-core-metadata="sha256={META_SHA}">'
        f"pkg-{i}.0-py3-none-any.whl</a><br/>"
        for i in range(5000)
    )
    start = time.perf_counter()
    page = parse_project_html(f"<html><body>{rows}</body></html>", "http://h/simple/pkg/")
    elapsed = time.perf_counter() - start
    assert len(page.files) == 5000
    assert page.files[-1].url == "http://h/p/pkg-4999.0-py3-none-any.whl"
    assert page.files[-1].requires_python == ">=3.8"
    # ~25 µs a link on a loaded CI machine; the bound only catches pathological slowness.
    assert elapsed < 3.0, elapsed


def test_link_joining_shortcut_agrees_with_urljoin() -> None:
    from urllib.parse import urljoin

    base = "https://h.example/a/b/simple/x/"
    hrefs = [
        "../../p/x-1.0.tar.gz",
        "./x-1.0.tar.gz",
        "x-1.0.tar.gz",
        "/abs/x-1.0.tar.gz",
        "//other.example/x-1.0.tar.gz",
        "https://cdn.example/f/x-1.0.tar.gz",
        "sub/../x-1.0.tar.gz",
        "x-1.0.tar.gz?sig=1",
    ]
    html = "".join(f'<a href="{h}">x</a>' for h in hrefs)
    page = parse_project_html(html, base)
    assert [f.url for f in page.files] == [urljoin(base, h) for h in hrefs]


def test_an_href_no_url_parser_takes_is_skipped_not_a_crash() -> None:
    # urljoin raises ValueError on "http://[::1:bad/": one such link must not sink the page
    page = """<html><body>
        <a href="http://[::1:bad/demo-0.9-py3-none-any.whl">demo-0.9-py3-none-any.whl</a>
        <a href="/files/demo-1.0-py3-none-any.whl">demo-1.0-py3-none-any.whl</a>
    </body></html>"""
    parsed = parse_project_html(page, "https://idx.example/simple/demo/")
    assert [f.url for f in parsed.files] == ["https://idx.example/files/demo-1.0-py3-none-any.whl"]
    # a <base href> that is not a URL is ignored, as a browser does
    based = page.replace("<body>", '<body><base href="http://[::1">')
    parsed = parse_project_html(based, "https://idx.example/simple/demo/")
    assert [f.url for f in parsed.files] == ["https://idx.example/files/demo-1.0-py3-none-any.whl"]
    # only unparsable links: "none to a distribution file", the usual one-line error
    only_bad = '<html><a href="http://[::1:bad/demo-1.0-py3-none-any.whl">x</a></html>'
    with pytest.raises(KeaError, match="none to a distribution file"):
        parse_project_html(only_bad, "https://idx.example/simple/demo/")
