"""``refresh`` / ``refresh_packages`` in Settings: command line > KEA_* env > kea.toml > default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kea.errors import UsageError
from kea.settings import Settings, load_settings


def load(
    tmp_path: Path, cli: dict[str, Any] | None = None, toml: str | None = None, **env: str
) -> Settings:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    if toml is not None:
        (work / "kea.toml").write_text(toml)
    full_env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **env}
    return load_settings(cli=cli or {}, env=full_env, cwd=work)


def test_defaults(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.refresh is False and s.refresh_packages == []


@pytest.mark.parametrize(
    ("cli", "env", "toml", "expected"),
    [
        ({"refresh": True}, {}, None, True),
        ({}, {"KEA_REFRESH": "1"}, None, True),
        ({}, {"KEA_REFRESH": "true"}, None, True),
        ({}, {"KEA_REFRESH": "0"}, "refresh = true\n", False),  # env beats the file
        ({}, {}, "refresh = true\n", True),
        ({"refresh": False}, {"KEA_REFRESH": "1"}, "refresh = true\n", False),  # --no-refresh
        ({"refresh": None}, {"KEA_REFRESH": "yes"}, None, True),  # flag not given
    ],
)
def test_refresh_precedence(
    tmp_path: Path, cli: dict[str, Any], env: dict[str, str], toml: str | None, expected: bool
) -> None:
    assert load(tmp_path, cli, toml, **env).refresh is expected


def test_refresh_package_precedence(tmp_path: Path) -> None:
    toml = 'refresh-package = ["from-file"]\n'
    env = {"KEA_REFRESH_PACKAGE": "a b"}
    assert load(tmp_path, {"refresh_package": ("x", "Y")}, toml, **env).refresh_packages == [
        "x",
        "Y",
    ]
    assert load(tmp_path, {"refresh_package": ()}, toml, **env).refresh_packages == ["a", "b"]
    assert load(tmp_path, {}, toml).refresh_packages == ["from-file"]
    assert load(tmp_path, {}, 'refresh-package = "one"\n').refresh_packages == ["one"]
    (tmp_path / "work" / "kea.toml").unlink()
    assert load(tmp_path, {}, None).refresh_packages == []


def test_user_config_and_pyproject(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "kea" / "kea.toml"
    user.parent.mkdir(parents=True)
    user.write_text('refresh = true\nrefresh-package = ["u"]\n')
    s = load(tmp_path)
    assert s.refresh and s.refresh_packages == ["u"]
    assert not load(tmp_path, {"no_config": True}).refresh
    (tmp_path / "work" / "pyproject.toml").write_text('[tool.kea]\nrefresh-package = ["p"]\n')
    # The project file comes first, the user file still fills what it does not say.
    s = load(tmp_path)
    assert s.refresh_packages == ["p"] and s.refresh


@pytest.mark.parametrize(
    ("cli", "env", "toml", "message"),
    [
        ({}, {}, 'refresh = "yes"\n', "refresh = 'yes': expected true or false"),
        ({}, {}, "refresh-package = 3\n", "refresh-package = 3: expected a list of"),
        ({}, {}, "refresh-package = [1]\n", "refresh-package = [1]: expected a list of"),
        ({"refresh_package": ["ok", "-bad"]}, {}, None, "--refresh-package: '-bad' is not"),
        ({}, {"KEA_REFRESH_PACKAGE": "a/b"}, None, "KEA_REFRESH_PACKAGE: 'a/b' is not"),
        ({}, {}, 'refresh-package = ["a b"]\n', "refresh-package: 'a b' is not"),
    ],
)
def test_bad_values_are_usage_errors(
    tmp_path: Path, cli: dict[str, Any], env: dict[str, str], toml: str | None, message: str
) -> None:
    with pytest.raises(UsageError) as e:
        load(tmp_path, cli, toml, **env)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_refresh_and_offline(tmp_path: Path) -> None:
    # Both on the command line: a contradiction, as in uv.
    with pytest.raises(UsageError) as e:
        load(tmp_path, {"refresh": True, "offline": True})
    assert str(e.value) == "--refresh and --offline contradict each other"
    assert e.value.hint and "drop one" in e.value.hint
    assert e.value.exit_code == 2
    # Any other combination is allowed; the index client ignores the refresh offline.
    s = load(tmp_path, {"refresh": True}, KEA_OFFLINE="1")
    assert s.refresh and s.offline
    s = load(tmp_path, {"offline": True}, KEA_REFRESH="1")
    assert s.refresh and s.offline
    s = load(tmp_path, {"offline": True, "refresh_package": ["x"]})
    assert s.refresh_packages == ["x"] and s.offline
    s = load(tmp_path, {"offline": True, "refresh": False}, KEA_REFRESH="1")
    assert not s.refresh
