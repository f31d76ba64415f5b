"""The URL parser, the port parser and the host check shared by the CLI and the app."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    assert target.url() == "getfiles://[::1]:5/a%20b"


@given(
    path=st.binary(max_size=64),
    host=st.sampled_from(["h", "::1", "10.0.0.1", "files.example"]),
    port=st.integers(1, 65535),
    tls=st.booleans(),
)
def test_a_url_parses_back_to_its_target_for_any_path_bytes(
    path: bytes, host: str, port: int, tls: bool
) -> None:
    target = Target(host, port, path, tls)
    assert parse_url(target.url()) == target


@pytest.mark.parametrize(
    ("path", "url"),
    [
        (b"a%41.txt", "getfile://h:1/a%2541.txt"),
        (b"x#y", "getfile://h:1/x%23y"),
        (b"q?z", "getfile://h:1/q%3Fz"),
        (b"100% done", "getfile://h:1/100%25%20done"),
        (b"\xff\xfe.bin", "getfile://h:1/%FF%FE.bin"),
        (b"/srv/x", "getfile://h:1//srv/x"),
        (b"docs/a-b_c.d~e:f@g+h,i=j", "getfile://h:1/docs/a-b_c.d~e:f@g+h,i=j"),
    ],
)
def test_url_escapes_what_would_change_the_path_and_keeps_the_rest(path: bytes, url: str) -> None:
    assert Target("h", 1, path).url() == url
    assert parse_url(url).path == path


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
