from pathlib import Path

import pytest

from kea.errors import UsageError
from kea.settings import PYPI_URL, load_settings


def test_defaults_to_pypi(tmp_path: Path) -> None:
    s = load_settings(cli={}, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert [i.url for i in s.indexes] == [PYPI_URL]
    assert s.keyring_provider == "disabled"
    assert s.netrc_path == tmp_path / ".netrc"


def test_precedence_cli_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "kea.toml").write_text(
        'index-url = "https://file.example/simple"\nkeyring-provider = "subprocess"\n'
    )
    env = {"HOME": str(tmp_path), "KEA_INDEX_URL": "https://env.example/simple"}
    s = load_settings(cli={}, env=env, cwd=tmp_path)
    assert s.default_index is not None
    assert s.default_index.url == "https://env.example/simple"
    assert s.keyring_provider == "subprocess"
    s = load_settings(cli={"index_url": "https://cli.example/simple"}, env=env, cwd=tmp_path)
    assert s.default_index is not None
    assert s.default_index.url == "https://cli.example/simple"
    s = load_settings(cli={"no_config": True}, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert s.keyring_provider == "disabled"


def test_index_tables_in_pyproject_of_parent(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname='x'\n\n"
        "[[tool.kea.index]]\nname = 'corp'\nurl = 'https://corp.example/simple'\n"
        "authenticate = 'always'\n"
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    s = load_settings(cli={}, env={"HOME": str(tmp_path)}, cwd=sub)
    corp = s.indexes[0]
    assert (corp.name, corp.authenticate, corp.env_prefix) == ("corp", "always", "KEA_INDEX_CORP_")
    assert s.indexes[-1].url == PYPI_URL


def test_named_cli_index_and_extra(tmp_path: Path) -> None:
    s = load_settings(
        cli={"index": ["my-corp=https://c.example/simple"], "extra_index_url": ["https://e/x"]},
        env={"HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert [(i.name, i.url) for i in s.indexes] == [
        ("my-corp", "https://c.example/simple"),
        (None, "https://e/x"),
        ("pypi", PYPI_URL),
    ]
    assert s.indexes[0].env_prefix == "KEA_INDEX_MY_CORP_"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("[[index]]\nname='x'\n", "`url` is required"),
        ("[[index]]\nurl='https://x/simple'\nauthenticate='sometimes'\n", "authenticate"),
        ("[[index]]\nurl='ftp://x/simple'\n", "unsupported URL scheme"),
        ("index-url = [\n", "invalid TOML"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "kea.toml").write_text(content)
    with pytest.raises(UsageError) as e:
        load_settings(cli={}, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert needle in e.value.message
    assert "\n" not in e.value.message


def test_bad_url_is_redacted(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        load_settings(cli={"index_url": "gopher://u:hunter2@h/simple"}, env={"HOME": str(tmp_path)})
    assert "hunter2" not in e.value.message


def test_no_index(tmp_path: Path) -> None:
    s = load_settings(cli={"no_index": True}, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert s.indexes == []
