"""The requirements-file parser: options, nesting, expansion, continuations and errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kea.dist.requirements import (
    Entry,
    RequirementsError,
    check_hashes,
    parse_requirement,
    parse_requirements,
    parse_requirements_text,
)
from kea.errors import KeaError

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def names(entries: list[Entry]) -> list[str]:
    return [str(e.requirement) for e in entries]


def test_plain_requirements_comments_and_markers(tmp_path: Path) -> None:
    f = write(
        tmp_path / "req.txt",
        "# a comment\n"
        "requests>=2.31  # trailing comment\n"
        "\n"
        "Black[jupyter] ==24.1.0\n"
        'tomli; python_version < "3.11"\n'
        "   # indented comment\n",
    )
    rs = parse_requirements(f, env={})
    assert names(rs.requirements) == [
        "requests>=2.31",
        "Black[jupyter]==24.1.0",
        'tomli; python_version < "3.11"',
    ]
    assert rs.requirements[0].source == f"{f}:2"
    assert rs.requirements[1].source == f"{f}:4"
    assert rs.requirements[1].name == "black"
    assert rs.requirements[1].requirement.extras == {"jupyter"}
    assert rs.files == [f.resolve()]


def test_line_continuations_join_and_keep_first_line_number(tmp_path: Path) -> None:
    f = write(
        tmp_path / "req.txt",
        "first==1.0\n"
        f"requests==2.31.0 \\\n    --hash=sha256:{SHA_A} \\\n    --hash=sha256:{SHA_B}\n"
        "last\n",
    )
    rs = parse_requirements(f, env={})
    assert names(rs.requirements) == ["first==1.0", "requests==2.31.0", "last"]
    entry = rs.requirements[1]
    assert entry.source == f"{f}:2"
    assert entry.hashes == (f"sha256:{SHA_A}", f"sha256:{SHA_B}")
    assert rs.requirements[2].source == f"{f}:5"


def test_env_expansion_known_and_unknown(tmp_path: Path) -> None:
    f = write(
        tmp_path / "req.txt",
        "--extra-index-url https://${USER_}:${TOKEN}@example.invalid/simple\n"
        "pkg==${VERSION}\n"
        "other @ https://example.invalid/${MISSING}/other-1.0-py3-none-any.whl\n",
    )
    rs = parse_requirements(f, env={"USER_": "me", "TOKEN": "s3cr3t", "VERSION": "1.2"})
    assert rs.extra_index_urls == ["https://me:s3cr3t@example.invalid/simple"]
    assert names(rs.requirements)[0] == "pkg==1.2"
    # unknown variables are left as written (pip does the same)
    assert "${MISSING}" in (rs.requirements[1].requirement.url or "")


def test_index_options(tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    f = write(
        tmp_path / "sub" / "req.txt",
        "-i https://one.invalid/simple\n"
        "--index-url=https://two.invalid/simple\n"
        "--extra-index-url https://extra.invalid/simple\n"
        "-f ../links\n"
        "--find-links=https://links.invalid/page.html\n"
        "--no-index\n"
        "--pre\n"
        "--only-binary :all:\n"
        "--no-binary=foo,bar\n"
        "--trusted-host example.invalid\n"
        "-ihttps://three.invalid/simple\n",
    )
    rs = parse_requirements(f, env={})
    assert rs.index_url == "https://three.invalid/simple"
    assert rs.extra_index_urls == ["https://extra.invalid/simple"]
    assert rs.find_links == [str(links.resolve()), "https://links.invalid/page.html"]
    assert rs.no_index and rs.pre
    assert rs.only_binary == [":all:"]
    assert rs.no_binary == ["foo", "bar"]
    assert rs.trusted_hosts == ["example.invalid"]
    assert rs.requirements == []


def test_nested_requirements_and_constraints_relative_to_file(tmp_path: Path) -> None:
    write(tmp_path / "base" / "common.txt", "-c ../pins/constraints.txt\nclick\n")
    write(tmp_path / "pins" / "constraints.txt", "click==8.1.7\n-r more.txt\n")
    write(tmp_path / "pins" / "more.txt", "rich<14\n")
    top = write(tmp_path / "req.txt", "-r base/common.txt\nrequests\n--requirement=extra.txt\n")
    write(tmp_path / "extra.txt", "idna\n")
    rs = parse_requirements(top, env={})
    assert names(rs.requirements) == ["click", "requests", "idna"]
    # a -r inside a constraints file contributes constraints
    assert names(rs.constraints) == ["click==8.1.7", "rich<14"]
    assert rs.constraints[1].source == f"{tmp_path / 'pins' / 'more.txt'}:1"
    assert len(rs.files) == 5


def test_constraints_file_directly(tmp_path: Path) -> None:
    f = write(tmp_path / "c.txt", "urllib3<2\n")
    rs = parse_requirements(f, constraint=True, env={})
    assert rs.requirements == []
    assert names(rs.constraints) == ["urllib3<2"]


def test_constraint_with_extras_is_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "c.txt", "requests[socks]<3\n")
    with pytest.raises(RequirementsError, match=r"c\.txt:1: a constraint cannot name extras"):
        parse_requirements(f, constraint=True, env={})


def test_editables_are_collected(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    f = write(tmp_path / "req.txt", "-e ./proj\n--editable=git+https://h.invalid/r#egg=thing\n")
    rs = parse_requirements(f, env={})
    assert [e.name for e in rs.editables] == ["proj", "thing"]
    assert all(e.editable for e in rs.editables)
    assert rs.requirements == []


def test_wheel_paths_and_urls_become_named_direct_references(tmp_path: Path) -> None:
    wheel = tmp_path / "wheels" / "demo_pkg-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"")
    f = write(
        tmp_path / "req.txt",
        "./wheels/demo_pkg-1.0-py3-none-any.whl\n"
        "https://files.invalid/p/other-2.0-py3-none-any.whl\n"
        "named @ https://files.invalid/named-3.0-py3-none-any.whl\n",
    )
    rs = parse_requirements(f, env={})
    first, second, third = rs.requirements
    assert first.name == "demo-pkg"
    assert first.requirement.url == wheel.resolve().as_uri()
    assert second.name == "other"
    assert second.requirement.url == "https://files.invalid/p/other-2.0-py3-none-any.whl"
    assert third.name == "named"


def test_sdist_and_source_tree_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    sd = tmp_path / "pkg-1.0.tar.gz"
    sd.write_bytes(b"")
    for line, shown in (("./tree", "tree"), ("./pkg-1.0.tar.gz", "pkg-1.0.tar.gz")):
        f = write(tmp_path / "req.txt", line + "\n")
        with pytest.raises(RequirementsError) as exc:
            parse_requirements(f, env={})
        assert "building from source is not supported yet" in exc.value.message
        assert shown in exc.value.message
    with pytest.raises(RequirementsError, match="building from source is not supported yet"):
        parse_requirement("pkg @ https://files.invalid/pkg-1.0.tar.gz")


def test_malformed_requirement_names_file_line_and_column(tmp_path: Path) -> None:
    f = write(tmp_path / "req.txt", "ok==1\n\n  foo>=>1\n")
    with pytest.raises(KeaError) as exc:
        parse_requirements(f, env={})
    msg = exc.value.message
    # "foo>=>1" is indented by two spaces: the bad ">" is column 6 of line 3
    assert msg.startswith("invalid requirement 'foo>=>1' ")
    assert f"({f}:3, column 6)" in msg
    assert "\n" not in msg
    assert exc.value.hint and "name[extra]" in exc.value.hint
    assert exc.value.exit_code == 1


def test_malformed_requirement_on_command_line_has_column() -> None:
    with pytest.raises(KeaError) as exc:
        parse_requirement("foo>=>1")
    assert "(command line, column 4)" in exc.value.message
    with pytest.raises(KeaError) as exc:
        parse_requirement("bar==1; python_version >")
    assert "column 25" in exc.value.message
    assert "marker" in exc.value.message


def test_missing_files_name_the_including_file(tmp_path: Path) -> None:
    with pytest.raises(RequirementsError) as exc:
        parse_requirements(tmp_path / "nope.txt", env={})
    assert exc.value.message == f"requirements file not found: {tmp_path / 'nope.txt'}"
    top = write(tmp_path / "req.txt", "-c missing-constraints.txt\n")
    with pytest.raises(RequirementsError) as exc:
        parse_requirements(top, env={})
    assert "constraints file not found" in exc.value.message
    assert "missing-constraints.txt" in exc.value.message
    assert f"(from {top.resolve()})" in exc.value.message


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "-r b.txt\n")
    write(tmp_path / "b.txt", "-r a.txt\n")
    with pytest.raises(RequirementsError, match="includes itself"):
        parse_requirements(tmp_path / "a.txt", env={})


def test_bad_options_and_hashes(tmp_path: Path) -> None:
    cases = {
        "--frobnicate\n": "unknown option --frobnicate",
        "-r\n": "option -r needs a value",
        "pkg==1 --hash=md5:abcd\n": "invalid hash 'md5:abcd'",
        "pkg==1 --hash=sha256:abcd\n": "invalid sha256 digest 'abcd'",
        f"--hash=sha256:{SHA_A}\n": "--hash must follow a requirement",
        "--no-index=yes\n": "option --no-index takes no value",
    }
    for text, expected in cases.items():
        f = write(tmp_path / "req.txt", text)
        with pytest.raises(RequirementsError) as exc:
            parse_requirements(f, env={})
        assert expected in exc.value.message, (text, exc.value.message)
        assert exc.value.message.startswith(f"{f}:1") or "--hash" not in text


def test_require_hashes_semantics() -> None:
    rs = parse_requirements_text(
        f"--require-hashes\na==1.0 --hash=sha256:{SHA_A}\nb===2 --hash=SHA256:{SHA_B.upper()}\n",
        env={},
    )
    assert rs.require_hashes
    assert rs.requirements[1].hashes == (f"sha256:{SHA_B}",)
    assert check_hashes(rs.requirements, rs.require_hashes) is True

    # no hashes anywhere and no flag: not in hash-checking mode
    plain = parse_requirements_text("a>=1\n", env={})
    assert check_hashes(plain.requirements, False) is False

    # one hash turns the mode on for every requirement
    mixed = parse_requirements_text(f"a==1 --hash=sha256:{SHA_A}\nb==2\n", env={})
    with pytest.raises(RequirementsError, match="needs a --hash: 'b==2'"):
        check_hashes(mixed.requirements, False)

    unpinned = parse_requirements_text(f"a>=1 --hash=sha256:{SHA_A}\n", env={})
    with pytest.raises(RequirementsError, match="must be pinned with ==: 'a>=1'"):
        check_hashes(unpinned.requirements, False)
    wildcard = parse_requirements_text(f"a==1.* --hash=sha256:{SHA_A}\n", env={})
    with pytest.raises(RequirementsError, match="must be pinned"):
        check_hashes(wildcard.requirements, False)


def test_hashes_other_than_sha256_alone_are_refused_with_a_hint() -> None:
    sha512 = hashlib.sha512(b"a").hexdigest()
    only = parse_requirements_text(f"a==1 --hash=sha512:{sha512}\n", env={})
    with pytest.raises(RequirementsError) as e:
        check_hashes(only.requirements, False)
    want = "kea checks --hash values by sha256, and 'a==1' has only sha512 (<requirements>:1)"
    assert e.value.message == want
    assert e.value.hint is not None and "pip hash FILE" in e.value.hint
    # beside a sha256 value, another algorithm's value is accepted (any one value may match)
    both = parse_requirements_text(f"a==1 --hash=sha512:{sha512} --hash=sha256:{SHA_A}\n", env={})
    assert check_hashes(both.requirements, False) is True


def test_secrets_in_bad_lines_are_redacted(tmp_path: Path) -> None:
    f = write(tmp_path / "req.txt", "pkg @ https://user:hunter2@h.invalid/x.tar.gz\n")
    with pytest.raises(RequirementsError) as exc:
        parse_requirements(f, env={})
    assert "hunter2" not in exc.value.message
    f = write(tmp_path / "req.txt", "pkg>=>1 @ https://user:hunter2@h.invalid/x.whl\n")
    with pytest.raises(RequirementsError) as exc:
        parse_requirements(f, env={})
    assert "hunter2" not in exc.value.message


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "req.txt"
    f.write_bytes("\ufeffalpha==1\r\nbeta \\\r\n  >=2\r\n".encode())
    rs = parse_requirements(f, env={})
    assert names(rs.requirements) == ["alpha==1", "beta>=2"]
