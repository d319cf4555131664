"""specs/auth.md, "Cases every implementation must pass" 1–23, end to end against real servers.

Each test drives kea (``kea auth check`` or its client API) as a subprocess with a private HOME,
NETRC, PATH and SSL_CERT_FILE, and asserts what each server received. The bodies are in
``cases_redirects.py`` and ``cases_sources.py`` so that ``test_redaction_e2e.py`` (case 24) can
run them again at ``-vvv``.
"""

from __future__ import annotations

import pytest

from tests.e2e import cases_redirects, cases_sources
from tests.e2e.harness import World

pytestmark = pytest.mark.e2e


def test_case01_router_302_to_tls_upstream_netrc(world: World) -> None:
    cases_redirects.case01_router_302_to_tls_upstream_netrc(world)


def test_case01b_after_401_retry_goes_to_the_final_hop(world: World) -> None:
    cases_redirects.case01b_after_401_retry_goes_to_the_final_hop(world)


def test_case02_router_path_and_http_routes_in_one_run(world: World) -> None:
    cases_redirects.case02_router_path_and_http_routes_in_one_run(world)


def test_case03_index_userinfo_links_to_presigned_host(world: World) -> None:
    cases_redirects.case03_index_userinfo_links_to_presigned_host(world)


def test_case03b_presigned_url_gets_no_ambient_netrc(world: World) -> None:
    cases_redirects.case03b_presigned_url_gets_no_ambient_netrc(world)


def test_case04_cross_origin_redirect_uses_targets_netrc_only(world: World) -> None:
    cases_redirects.case04_cross_origin_redirect_uses_targets_netrc_only(world)


def test_case05_same_host_other_port_is_cross_origin(world: World) -> None:
    cases_redirects.case05_same_host_other_port_is_cross_origin(world)


def test_case06_https_to_http_downgrade_sends_nothing(world: World) -> None:
    cases_redirects.case06_https_to_http_downgrade_sends_nothing(world)


def test_case07_same_origin_redirects_keep_credentials(world: World) -> None:
    cases_redirects.case07_same_origin_redirects_keep_credentials(world)


def test_case08_relative_location(world: World) -> None:
    cases_redirects.case08_relative_location(world)


def test_case09_303_307_308_on_file_downloads(world: World) -> None:
    cases_redirects.case09_303_307_308_on_file_downloads(world)


def test_case10_userinfo_in_location(world: World) -> None:
    cases_redirects.case10_userinfo_in_location(world)


def test_case11_netrc_default_only_after_401_and_never_after_redirect(world: World) -> None:
    cases_redirects.case11_netrc_default_only_after_401_and_never_after_redirect(world)


def test_case12_redirect_loop(world: World) -> None:
    cases_redirects.case12_redirect_loop(world)


def test_case13_no_credentials_anywhere(world: World) -> None:
    cases_sources.case13_no_credentials_anywhere(world)


def test_case14_wrong_netrc_password(world: World) -> None:
    cases_sources.case14_wrong_netrc_password(world)


def test_case15_keyring_username_only_index_url(world: World) -> None:
    cases_sources.case15_keyring_username_only_index_url(world)


def test_case15b_username_only_url_is_a_token_without_keyring(world: World) -> None:
    cases_sources.case15b_username_only_url_is_a_token_without_keyring(world)


def test_case16_keyring_on_cross_origin_hop(world: World) -> None:
    cases_sources.case16_keyring_on_cross_origin_hop(world)


def test_case17_index_env_credentials_win_over_url(world: World) -> None:
    cases_sources.case17_index_env_credentials_win_over_url(world)


def test_case18_authenticate_always(world: World) -> None:
    cases_sources.case18_authenticate_always(world)


def test_case19_two_indexes_one_host_different_credentials(world: World) -> None:
    cases_sources.case19_two_indexes_one_host_different_credentials(world)


def test_case19b_one_index_never_lends_its_credentials_to_another(world: World) -> None:
    cases_sources.case19b_one_index_never_lends_its_credentials_to_another(world)


def test_case20_proxy_credentials_only_to_the_proxy(world: World) -> None:
    cases_sources.case20_proxy_credentials_only_to_the_proxy(world)


def test_case21_userinfo_that_looks_like_a_host(world: World) -> None:
    cases_sources.case21_userinfo_that_looks_like_a_host(world)


def test_case22_file_location_is_an_error(world: World) -> None:
    cases_sources.case22_file_location_is_an_error(world)


def test_case23_longest_index_prefix_wins(world: World) -> None:
    cases_sources.case23_longest_index_prefix_wins(world)


def test_case23b_dot_segments_are_resolved_before_credentials_are_chosen(world: World) -> None:
    cases_sources.case23b_dot_segments_are_resolved_before_credentials_are_chosen(world)
