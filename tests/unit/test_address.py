"""The URL parser, the port parser and the host check shared by the CLI and the app."""

from __future__ import annotations

import pytest

from getfile_core import DEFAULT_PORT
from getfile_core.address import (
    Target,
    check_host,
    format_address,
    parse_port,
    parse_url,
    resolver_host,
)
from getfile_core.errors import UsageError


def test_a_url_without_a_port_uses_the_default() -> None:
    assert parse_url("getfile://h/x") == Target("h", DEFAULT_PORT, b"x")
    assert parse_url("getfile://h:/x").port == DEFAULT_PORT


def test_port_zero_in_a_url_is_an_error_not_the_default() -> None:
    # It used to mean 50001 silently (issue 14, rough edge 3).
    with pytest.raises(UsageError, match="port 0"):
        parse_url("getfile://h:0/x")


@pytest.mark.parametrize("port", ["99999", "65536", "x", "-1", "+5", "٣"])
def test_bad_ports_in_a_url(port: str) -> None:
    with pytest.raises(UsageError, match="port"):
        parse_url(f"getfile://h:{port}/x")


def test_ipv6_literal_and_tls() -> None:
    target = parse_url("getfiles://[::1]:5/a%20b")
    assert target == Target("::1", 5, b"a b", tls=True)
    assert target.address == "[::1]:5"
    assert target.url() == "getfiles://[::1]:5/a b"


@pytest.mark.parametrize(
    ("host", "port", "shown"),
    [("h", 1, "h:1"), ("::1", 50001, "[::1]:50001"), ("10.0.0.1", 80, "10.0.0.1:80")],
)
def test_format_address(host: str, port: int, shown: str) -> None:
    assert format_address(host, port) == shown


@pytest.mark.parametrize(("text", "port"), [("1", 1), ("50001", 50001), ("65535", 65535)])
def test_parse_port_accepts(text: str, port: int) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize("text", ["0", "65536", "", " 5", "5 ", "-1", "+1", "1e3", "٣", "0x10"])
def test_parse_port_refuses_with_one_line(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_port(text)
    assert "\n" not in str(caught.value)


def test_parse_port_zero_only_where_any_port_makes_sense() -> None:
    assert parse_port("0", allow_any=True) == 0
    with pytest.raises(UsageError):
        parse_port("65536", allow_any=True)


def test_a_host_the_idna_codec_refuses_is_a_usage_error() -> None:
    long_label = "a" * 64 + ".example"
    with pytest.raises(UsageError, match="1-63 characters"):
        check_host(long_label)
    with pytest.raises(UsageError):
        parse_url(f"getfile://{long_label}/x")
    with pytest.raises(UsageError):
        check_host("a..b")


@pytest.mark.parametrize("host", ["a\x1b]2;x\x07", "a b", ""])
def test_hosts_with_controls_or_spaces_are_refused_printably(host: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_host(host)
    assert "\x1b" not in str(caught.value) and "\x07" not in str(caught.value)


@pytest.mark.parametrize("host", ["a" * 63 + ".example", "bücher.de", "::1", "example.com."])
def test_good_hosts_pass(host: str) -> None:
    assert check_host(host) == host


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "files.example.org", "host.", "::1", "a" * 63 + ".org", "b\u00fccher.de", ""],
)
def test_resolver_host_is_what_the_idna_codec_gives(host: str) -> None:
    # getaddrinfo encodes a str host with IDNA (importing the codec: ~1 ms of every
    # download's start-up); the bytes handed to it instead must be the same.
    assert resolver_host(host) == host.encode("idna")


@pytest.mark.parametrize("host", ["a..b", ".", "a" * 64 + ".org", "x." + "b" * 64])
def test_resolver_host_refuses_what_the_idna_codec_refuses(host: str) -> None:
    with pytest.raises(UnicodeError):
        host.encode("idna")
    with pytest.raises(UnicodeError):
        resolver_host(host)
    with pytest.raises(UsageError, match="1-63 characters"):
        check_host(host)
