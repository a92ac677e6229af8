"""Where a fetch may connect, decided before connecting. No test here sends traffic outside loopback:
the sites only *send* redirects to other addresses, names resolve through a stub, and the
`loopback_only` guard refuses (and records) any connection that would leave 127.0.0.0/8."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from tests.guard import loopback_only  # noqa: F401 - a fixture
from tests.site import LocalSite, html
from workers.crawl.http import OPEN_POLICY, PermanentFetchError, fetch
from workers.crawl.netpolicy import PRIVATE_NETWORKS, NetworkPolicy, networks_policy, parse_network, vetted_session
from workers.urls import PageURL

METADATA_URL = "http://169.254.169.254/latest/meta-data/"
# The widest policies anyone can configure: every private network (the deprecated flag, a
# source's `allow_private_networks: true`), and CIDRs that cover the whole address space.
WIDEST = {"private-networks": OPEN_POLICY, "everything": networks_policy(["0.0.0.0/0", "::/0"])}


@pytest.fixture(scope="module")
def site():
    s = LocalSite()
    s.routes |= {
        "/ok": html("<h1>ok</h1>"),
        "/to-metadata": html(b"", status=302, Location=METADATA_URL),
        "/to-metadata-nat64": html(b"", status=302, Location="http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"),
        "/to-metadata-mapped": html(b"", status=302, Location="http://[::ffff:169.254.169.254]/latest/"),
        "/to-link-local-v6": html(b"", status=302, Location="http://[fe80::1]/"),
    }
    yield s
    s.close()


def get(url: str, policy: NetworkPolicy):
    return fetch(vetted_session(), PageURL.of(url), connect_timeout=1, read_timeout=2, max_bytes=4096,
                 max_redirects=3, policy=policy)


@pytest.mark.parametrize("policy", WIDEST.values(), ids=WIDEST.keys())
@pytest.mark.parametrize("path", ["/to-metadata", "/to-metadata-nat64", "/to-metadata-mapped", "/to-link-local-v6"])
def test_redirect_to_a_link_local_address_is_refused_before_connecting(site, loopback_only, path, policy):
    before = len(site.hits[path])
    with pytest.raises(PermanentFetchError) as err:
        get(site.url(path), policy)
    assert err.value.reason == "link_local_address", str(err.value)
    assert loopback_only == []  # nothing even tried to connect there
    assert len(site.hits[path]) == before + 1  # the redirect itself was fetched


ANSWERS = {
    "metadata.test": ("169.254.169.254", "link_local_address"),
    "link-local.test": ("169.254.10.20", "link_local_address"),
    "link-local6.test": ("fe80::1", "link_local_address"),
    "aws6.test": ("fd00:ec2::254", "metadata_address"),
    "gcp6.test": ("fd20:ce::254", "metadata_address"),
    "alibaba.test": ("100.100.100.200", "metadata_address"),
    "azure.test": ("168.63.129.16", "metadata_address"),
    "nat64.test": ("64:ff9b::a9fe:a9fe", "link_local_address"),
    "sixtofour.test": ("2002:a9fe:a9fe::", "link_local_address"),  # 6to4 of 169.254.169.254
    "teredo.test": ("2001:0:4136:e378:8000:63bf:5601:5601", "link_local_address"),  # client 169.254.169.254
    "oracle.test": ("192.0.0.192", "metadata_address"),
}


@pytest.fixture
def stub_dns(monkeypatch):
    """Names under .test resolve to the addresses above; nothing is ever dialled."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in ANSWERS:
            return real(ANSWERS[host][0], port, *args, **kwargs)
        if host == "nat64-public.test":
            return real("64:ff9b::808:808", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("policy", WIDEST.values(), ids=WIDEST.keys())
@pytest.mark.parametrize("host", ANSWERS)
def test_hosts_resolving_to_link_local_or_metadata_are_refused_by_any_policy(
        stub_dns, loopback_only, host, policy):
    with pytest.raises(PermanentFetchError) as err:
        get(f"http://{host}/latest/meta-data/", policy)
    assert err.value.reason == ANSWERS[host][1], str(err.value)
    assert ANSWERS[host][0] in str(err.value)
    assert loopback_only == []


def test_a_connection_that_lands_on_a_link_local_peer_is_refused():
    """The second check, on the connected socket (DNS rebinding), uses the same rules."""
    from workers.crawl.netpolicy import Guard, PeerRefused

    class Peer:
        closed = False

        def getpeername(self):
            return ("169.254.169.254", 80)

        def close(self):
            self.closed = True

    guard, peer = Guard(WIDEST["everything"], deadline=0), Peer()
    with pytest.raises(PeerRefused):
        guard.vet(None, peer)
    assert peer.closed and guard.refused == ("link_local_address", ipaddress.ip_address("169.254.169.254"))


@pytest.mark.parametrize("cidr, kind", [
    ("169.254.169.254/32", "link-local"), ("169.254.0.0/16", "link-local"), ("fe80::/64", "link-local"),
    ("fd00:ec2::254/128", "cloud metadata"), ("100.100.100.200/32", "cloud metadata"),
])
def test_link_local_and_metadata_networks_cannot_be_opened(cidr, kind):
    with pytest.raises(ValueError, match=f"is a {kind} network, which is never fetched"):
        parse_network(cidr)


def test_private_networks_are_loopback_rfc1918_and_unique_local():
    policy = OPEN_POLICY
    for allowed in ("127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd12::1"):
        assert policy.refusal(ipaddress.ip_address(allowed)) is None, allowed
    for refused, reason in [("100.64.0.1", "private_address"), ("0.0.0.0", "private_address"),
                            ("169.254.1.1", "link_local_address"), ("fd00:ec2::254", "metadata_address")]:
        assert policy.refusal(ipaddress.ip_address(refused)) == reason, refused
    assert tuple(str(n) for n in PRIVATE_NETWORKS) == (
        "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def test_nat64_addresses_count_as_private(stub_dns, loopback_only):
    strict = NetworkPolicy()
    for address in ("64:ff9b::808:808", "64:ff9b:1::1"):
        assert strict.refusal(ipaddress.ip_address(address)) == "private_address", address
    with pytest.raises(PermanentFetchError) as err:
        get("http://nat64-public.test/", strict)
    assert err.value.reason == "private_address"
    # Opened on purpose, NAT64 still never reaches a link-local address through the gateway.
    nat64 = networks_policy(["64:ff9b::/96"])
    assert nat64.refusal(ipaddress.ip_address("64:ff9b::808:808")) is None
    assert nat64.refusal(ipaddress.ip_address("64:ff9b::a9fe:a9fe")) == "link_local_address"
    assert loopback_only == []


def test_proxy_environment_variables_are_ignored(site, monkeypatch):
    """Through a proxy the checks would see only the proxy's address: the fetch never uses one."""
    proxy = LocalSite(host="127.0.0.2")
    try:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base)
        assert get(site.url("/ok"), OPEN_POLICY).body == b"<h1>ok</h1>"
        assert dict(proxy.hits) == {}
    finally:
        proxy.close()


def test_6to4_and_teredo_addresses_are_judged_as_the_ipv4_address_they_embed():
    strict, private = NetworkPolicy(), OPEN_POLICY
    assert strict.refusal(ipaddress.ip_address("2002:808:808::1")) is None  # 6to4 of 8.8.8.8: public
    assert strict.refusal(ipaddress.ip_address("2002:a00:1::")) == "private_address"  # of 10.0.0.1
    assert strict.refusal(ipaddress.ip_address("2002:7f00:1::")) == "private_address"  # of 127.0.0.1
    assert private.refusal(ipaddress.ip_address("2002:a9fe:a9fe::")) == "link_local_address"
    assert private.refusal(ipaddress.ip_address("2002:c000:00c0::")) == "metadata_address"  # 192.0.0.192


def test_ietf_protocol_assignments_are_not_public():
    assert NetworkPolicy().refusal(ipaddress.ip_address("192.0.0.8")) == "private_address"
    assert OPEN_POLICY.refusal(ipaddress.ip_address("192.0.0.192")) == "metadata_address"
