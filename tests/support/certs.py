"""Test certificates made at run time with the ``openssl`` command.

Why generate rather than commit: a committed key pair expires and, worse,
teaches people that keys in a repository are normal. ``openssl`` is on the
machine (checked by ``shutil.which`` so a missing binary fails loudly, not
by skipping); EC P-256 keys take milliseconds.

Two certificate authorities: ``trusted`` (the one the tests hand to the
client as ``--cafile``) and ``rogue`` (same shape, never trusted), so that
"wrong certificate" means a real, well-formed certificate from the wrong
issuer, not a broken file.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

_CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class ServerCert:
    """A server certificate and key (PEM files) and the CA file that vouches for it."""

    cert: Path
    key: Path
    ca: Path

    @property
    def sha256(self) -> str:
        """The fingerprint ``--pin`` takes: SHA-256 of the DER certificate, in hex."""
        der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())
        return hashlib.sha256(der).hexdigest()


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    assert binary, "the openssl command is needed to make test certificates"
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (certificate, key) valid for two days."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}-ca.pem", folder / f"{name}-ca.key"
    _openssl(
        "req", "-x509", *_CURVE, "-keyout", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN=getfile test CA {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=folder,
    )  # fmt: skip
    return cert, key


def make_server_cert(
    folder: Path, name: str, ca: tuple[Path, Path], hosts: tuple[str, ...] = ("127.0.0.1",)
) -> ServerCert:
    """A leaf certificate for ``hosts`` (IPs or DNS names) signed by ``ca``."""
    ca_cert, ca_key = ca
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    names = ",".join(f"IP:{h}" if h[0].isdigit() else f"DNS:{h}" for h in hosts)
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName={names}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl("req", *_CURVE, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={hosts[0]}",
             cwd=folder)  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-set_serial", "0x" + hashlib.sha1(name.encode()).hexdigest()[:16],
        "-days", "2", "-extfile", str(extensions), "-out", str(cert),
        cwd=folder,
    )  # fmt: skip
    return ServerCert(cert=cert, key=key, ca=ca_cert)


@dataclass(frozen=True)
class CertSet:
    """Everything the TLS tests need, made once per session."""

    good: ServerCert  # for 127.0.0.1 and localhost, from the trusted CA
    rogue: ServerCert  # for 127.0.0.1, from a CA nobody trusts
    wrong_host: ServerCert  # from the trusted CA, but for another name
    trusted_ca: Path


def make_cert_set(folder: Path) -> CertSet:
    trusted = make_ca(folder, "trusted")
    rogue = make_ca(folder, "rogue")
    return CertSet(
        good=make_server_cert(folder, "good", trusted, ("127.0.0.1", "localhost")),
        rogue=make_server_cert(folder, "rogue", rogue, ("127.0.0.1",)),
        wrong_host=make_server_cert(folder, "elsewhere", trusted, ("files.example.org",)),
        trusted_ca=trusted[0],
    )
