"""PEP 691 JSON pages (PyPI-shaped), PEP 700 fields, and bad JSON pages."""

from __future__ import annotations

import json

import pytest

from kea.errors import KeaError
from kea.index.page import JSON_TYPE, parse_project_page, parse_root_page

SHA = "f" * 64


def pypi_like() -> dict[str, object]:
    return {
        "meta": {"api-version": "1.1", "_last-serial": 123},
        "name": "Demo_Pkg",
        "versions": ["1.0", "2.0"],
        "files": [
            {
                "filename": "demo_pkg-1.0.tar.gz",
                "url": "https://files.example/packages/aa/demo_pkg-1.0.tar.gz",
                "hashes": {"sha256": SHA.upper()},
                "requires-python": ">=3.8",
                "yanked": False,
                "size": 1234,
                "upload-time": "2024-01-02T03:04:05.123456Z",
                "data-dist-info-metadata": False,
                "core-metadata": False,
            },
            {
                "filename": "demo_pkg-2.0-py3-none-any.whl",
                "url": "../../packages/bb/demo_pkg-2.0-py3-none-any.whl",
                "hashes": {"sha256": SHA, "blake2b_256": "0" * 64},
                "requires-python": "",
                "yanked": "security issue",
                "size": 99,
                "core-metadata": {"sha256": "e" * 64},
                "dist-info-metadata": {"sha256": "d" * 64},
                "gpg-sig": False,
            },
        ],
    }


def test_pypi_like_json_page() -> None:
    body = json.dumps(pypi_like()).encode()
    page = parse_project_page(body, "https://pypi.example/simple/demo-pkg/", JSON_TYPE)
    assert page.name == "demo-pkg"
    assert page.api_version == "1.1"
    assert page.versions == ["1.0", "2.0"]
    sdist, wheel = page.files
    assert sdist.hashes == {"sha256": SHA}
    assert sdist.requires_python == ">=3.8"
    assert sdist.size == 1234 and sdist.upload_time == "2024-01-02T03:04:05.123456Z"
    assert sdist.core_metadata is False and not sdist.is_yanked
    assert wheel.url == "https://pypi.example/packages/bb/demo_pkg-2.0-py3-none-any.whl"
    assert wheel.requires_python is None
    assert wheel.yanked == "security issue"
    assert wheel.core_metadata == {"sha256": "e" * 64}  # core-metadata wins (PEP 714)
    assert wheel.hashes["blake2b_256"] == "0" * 64


def test_old_metadata_name_alone_is_honoured() -> None:
    data = pypi_like()
    files = data["files"]
    assert isinstance(files, list)
    del files[1]["core-metadata"]
    page = parse_project_page(json.dumps(data).encode(), "https://p/simple/demo-pkg/", JSON_TYPE)
    assert page.files[1].core_metadata == {"sha256": "d" * 64}


def test_json_sniffed_without_content_type() -> None:
    page = parse_project_page(json.dumps(pypi_like()).encode(), "https://p/simple/demo-pkg/", None)
    assert len(page.files) == 2


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.pop("files"), "files"),
        (lambda d: d.pop("meta"), "meta"),
        (lambda d: d["files"][0].pop("url"), "url"),
        (lambda d: d["files"][0].pop("hashes"), "hashes"),
        (lambda d: d["files"][0].__setitem__("size", "big"), "size"),
    ],
)
def test_json_page_with_missing_keys_is_one_line_error(mutate: object, fragment: str) -> None:
    data = pypi_like()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(KeaError) as e:
        parse_project_page(
            json.dumps(data).encode(), "https://tok3n@p.example/simple/demo-pkg/", JSON_TYPE
        )
    msg = str(e.value)
    assert msg.startswith("invalid JSON index page https://****@p.example/simple/demo-pkg/")
    assert fragment in msg
    assert "tok3n" not in msg and "\n" not in msg


def test_not_json_at_all() -> None:
    with pytest.raises(KeaError, match="not JSON"):
        parse_project_page(b"<html>oops", "https://p/simple/x/", JSON_TYPE)


def test_unsupported_major_version() -> None:
    data = pypi_like()
    data["meta"] = {"api-version": "2.0"}
    with pytest.raises(KeaError, match=r"version 2\.0"):
        parse_project_page(json.dumps(data).encode(), "https://p/simple/x/", JSON_TYPE)


def test_root_json() -> None:
    body = json.dumps(
        {"meta": {"api-version": "1.0"}, "projects": [{"name": "a"}, {"name": "B_c"}]}
    ).encode()
    assert parse_root_page(body, "https://p/simple/", JSON_TYPE).names == ["a", "B_c"]


def test_binary_garbage_is_not_an_index() -> None:
    with pytest.raises(KeaError, match="not a package index page"):
        parse_project_page(b"\x00\x01PK\x03\x04", "https://p/simple/x/", "application/zip")


def test_a_file_url_no_url_parser_takes_is_skipped() -> None:
    data = pypi_like()
    data["files"][0]["url"] = "http://[::1:bad/demo_pkg-1.0.tar.gz"
    page = parse_project_page(
        json.dumps(data).encode(), "https://pypi.example/simple/demo-pkg/", JSON_TYPE
    )
    assert [f.filename for f in page.files] == ["demo_pkg-2.0-py3-none-any.whl"]
