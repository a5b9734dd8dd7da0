"""EVOTE_TRUSTED_PROXIES: a reverse proxy on another machine forwards the client's address."""
from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from server.auth.client_address import client_address, parse_trusted_proxies
from server.settings import SettingsError, load_settings


def _request(peer: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 5000)
    return make_mocked_request("POST", "/api/staff/login", headers=headers, transport=transport)


def test_the_setting_is_a_list_of_addresses_and_networks():
    settings = load_settings({"EVOTE_TRUSTED_PROXIES": " 10.0.0.5, 192.0.2.0/24 ,2001:db8::/64,"})
    assert [str(n) for n in settings.trusted_proxy_networks] == ["10.0.0.5/32", "192.0.2.0/24", "2001:db8::/64"]
    assert load_settings({}).trusted_proxy_networks == ()
    with pytest.raises(SettingsError, match=r"EVOTE_TRUSTED_PROXIES.*'proxy\.example'"):
        load_settings({"EVOTE_TRUSTED_PROXIES": "10.0.0.5,proxy.example"})
    with pytest.raises(SettingsError):
        load_settings({"EVOTE_TRUSTED_PROXIES": "10.0.0.0/33"})


def test_a_listed_remote_proxy_forwards_the_client_address():
    trusted = parse_trusted_proxies("10.0.0.5, 192.0.2.0/24")
    # without the setting, a remote proxy is the client and its header is ignored
    assert client_address(_request("10.0.0.5", "203.0.113.9")) == "10.0.0.5"
    # with it: the right-most forwarded entry that is not a trusted proxy
    assert client_address(_request("10.0.0.5", "203.0.113.9"), trusted) == "203.0.113.9"
    assert client_address(_request("192.0.2.77", "198.51.100.1, 203.0.113.9, 192.0.2.8"), trusted) == "203.0.113.9"
    # an IPv4 proxy seen through an IPv6 socket is still that proxy
    assert client_address(_request("::ffff:10.0.0.5", "203.0.113.9"), trusted) == "203.0.113.9"
    # a peer outside the list cannot choose its address with the header
    assert client_address(_request("10.0.0.6", "203.0.113.9"), trusted) == "10.0.0.6"
    # a client cannot hide behind a spoofed left-most entry: the proxy's own entry is the right-most
    assert client_address(_request("10.0.0.5", "127.0.0.1, 198.51.100.1"), trusted) == "198.51.100.1"
    # a trusted proxy sending no usable header: no per-address count (the per-account one remains)
    assert client_address(_request("10.0.0.5"), trusted) is None
    assert client_address(_request("10.0.0.5", "10.0.0.5, garbage"), trusted) is None
    # loopback proxies stay trusted whatever the setting says
    assert client_address(_request("127.0.0.1", "203.0.113.9"), trusted) == "203.0.113.9"
    assert client_address(_request("::1", "2001:db8::1"), parse_trusted_proxies("")) == "2001:db8::1"

