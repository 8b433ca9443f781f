"""Transport security: TLS with FOOTHILLS_TLS_CERT/KEY, mutual TLS with FOOTHILLS_TLS_CLIENT_CA.

Every certificate is made here at run time (EC P-256, with `cryptography`): a server CA and the server's
certificate (for 127.0.0.1 and localhost), a client CA and clients it signed (one of them expired), and
another CA that nobody should trust. Servers are real grpc.aio servers on free ports (on SQLite: TLS
sits below the database), and one `foothills-rpc serve` subprocess is driven by the real grpcurl
binary with `-cacert`, as people scripting against the service will.

A handshake that fails is `UNAVAILABLE` for a gRPC client: the call never reaches the server's code.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.config import ConfigError, Settings, TlsSettings
from foothills_rpc.server import FoothillsServer, build_components
from tests.e2e_support import GRPCURL, START_TIMEOUT, STOP_TIMEOUT, server_env
from tests.support import free_port, make_settings, stop_process

PASSWORD = "tls passphrase 51d0c2a7"
SERVING = health_pb2.HealthCheckResponse.SERVING
CALL_TIMEOUT = 10.0  # a refused handshake fails at once; this only bounds a hang


# --- certificates ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as objects and as PEM files."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _issue(folder: Path, name: str, *, issuer: Issued | None = None, usage: str = "ca",
           valid: tuple[timedelta, timedelta] = (timedelta(hours=-1), timedelta(days=1))) -> Issued:
    """A CA (self-signed when `issuer` is None) or a leaf for `usage` "server" or "client", written to folder."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.certificate.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + valid[0]).not_valid_after(now + valid[1])
               .add_extension(x509.BasicConstraints(ca=usage == "ca", path_length=None), critical=True))
    if usage == "ca":
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    else:
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    if usage == "server":
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    signer = issuer.key if issuer else key
    certificate = builder.sign(signer, hashes.SHA256())
    issued = Issued(certificate, key, folder / f"{name}.crt", folder / f"{name}.key")
    issued.cert_path.write_bytes(issued.cert_pem)
    issued.key_path.write_bytes(issued.key_pem)
    return issued


@dataclass(frozen=True)
class Pki:
    folder: Path
    server_ca: Issued
    server: Issued  # signed by server_ca
    client_ca: Issued
    client: Issued  # signed by client_ca
    expired_client: Issued  # signed by client_ca, expired an hour ago
    stranger_ca: Issued
    stranger: Issued  # a client certificate signed by stranger_ca
    server_side_client: Issued  # a client certificate signed by server_ca, not by client_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server_ca = _issue(folder, "server-ca")
    client_ca = _issue(folder, "client-ca")
    stranger_ca = _issue(folder, "stranger-ca")
    return Pki(
        folder=folder, server_ca=server_ca, client_ca=client_ca, stranger_ca=stranger_ca,
        server=_issue(folder, "server", issuer=server_ca, usage="server"),
        client=_issue(folder, "client", issuer=client_ca, usage="client"),
        expired_client=_issue(folder, "expired-client", issuer=client_ca, usage="client",
                              valid=(timedelta(days=-2), timedelta(hours=-1))),
        stranger=_issue(folder, "stranger", issuer=stranger_ca, usage="client"),
        server_side_client=_issue(folder, "server-side-client", issuer=server_ca, usage="client"),
    )


# --- in-process servers ----------------------------------------------------------------------------------

@asynccontextmanager
async def _serving(folder: Path, template: Path, tls: TlsSettings) -> AsyncIterator[int]:
    database = folder / "tls.db"
    shutil.copy(template, database)
    settings = make_settings(f"sqlite:///{database}", tls=tls, outbox_dir=folder / "outbox")
    server = FoothillsServer(build_components(settings))
    port = await server.start("127.0.0.1:0")
    try:
        yield port
    finally:
        await server.stop(0)


@pytest.fixture(scope="module")
async def tls_port(pki: Pki, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[int]:
    """A server with TLS and no client certificates."""
    async with _serving(tmp_path_factory.mktemp("tls"), sqlite_template,
                        TlsSettings(cert=pki.server.cert_path, key=pki.server.key_path)) as port:
        yield port


@pytest.fixture(scope="module")
async def mtls_port(pki: Pki, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[int]:
    """A server that also requires a client certificate signed by the client CA."""
    tls = TlsSettings(cert=pki.server.cert_path, key=pki.server.key_path, client_ca=pki.client_ca.cert_path)
    async with _serving(tmp_path_factory.mktemp("mtls"), sqlite_template, tls) as port:
        yield port


def _credentials(trust: Issued, identity: Issued | None = None) -> grpc.ChannelCredentials:
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=trust.cert_pem)
    return grpc.ssl_channel_credentials(root_certificates=trust.cert_pem, private_key=identity.key_pem,
                                        certificate_chain=identity.cert_pem)


@asynccontextmanager
async def _channel(port: int, credentials: grpc.ChannelCredentials | None) -> AsyncIterator[grpc.aio.Channel]:
    target = f"127.0.0.1:{port}"
    channel = (grpc.aio.insecure_channel(target) if credentials is None
               else grpc.aio.secure_channel(target, credentials))
    try:
        yield channel
    finally:
        await channel.close()


async def _health(port: int, credentials: grpc.ChannelCredentials | None) -> int:
    async with _channel(port, credentials) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                 timeout=CALL_TIMEOUT)
        return int(answer.status)


async def _refused(port: int, credentials: grpc.ChannelCredentials | None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(port, credentials)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    return refused.value


async def _register_login_profile(port: int, credentials: grpc.ChannelCredentials, email: str) -> None:
    async with _channel(port, credentials) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        registered = await auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD,
                                                                  display_name="Tess"), timeout=CALL_TIMEOUT)
        login = await auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD), timeout=CALL_TIMEOUT)
        assert login.user.name == registered.user.name
        profile = await auth.GetProfile(
            auth_pb2.GetProfileRequest(), timeout=CALL_TIMEOUT,
            metadata=(("authorization", f"Bearer {login.credentials.access_token}"),))
        assert profile.user.email == email


# --- TLS ------------------------------------------------------------------------------------------------

async def test_a_client_trusting_the_server_ca_is_served(tls_port: int, pki: Pki) -> None:
    """Health answers SERVING over TLS, and a whole sign-in (tokens both ways) works on the channel."""
    assert await _health(tls_port, _credentials(pki.server_ca)) == SERVING
    await _register_login_profile(tls_port, _credentials(pki.server_ca), "tess.tls@example.com")


async def test_a_plaintext_client_is_refused(tls_port: int, pki: Pki) -> None:
    await _refused(tls_port, None)
    assert await _health(tls_port, _credentials(pki.server_ca)) == SERVING  # and the server goes on


async def test_a_client_trusting_another_ca_is_refused(tls_port: int, pki: Pki) -> None:
    """The client refuses a server whose certificate it cannot verify (no silent fallback to plaintext)."""
    refused = await _refused(tls_port, _credentials(pki.stranger_ca))
    assert "CERTIFICATE_VERIFY_FAILED" in (refused.debug_error_string() or ""), refused


async def test_without_a_client_ca_client_certificates_are_optional(tls_port: int, pki: Pki) -> None:
    assert await _health(tls_port, _credentials(pki.server_ca, pki.stranger)) == SERVING


# --- mutual TLS -----------------------------------------------------------------------------------------

async def test_mutual_tls_serves_a_client_certificate_signed_by_the_client_ca(mtls_port: int, pki: Pki) -> None:
    assert await _health(mtls_port, _credentials(pki.server_ca, pki.client)) == SERVING
    await _register_login_profile(mtls_port, _credentials(pki.server_ca, pki.client), "tess.mtls@example.com")


@pytest.mark.parametrize("identity", [
    pytest.param(None, id="no-certificate"),
    pytest.param("stranger", id="certificate-from-another-ca"),
    pytest.param("server_side_client", id="certificate-from-the-server-ca-not-the-client-ca"),
    pytest.param("expired_client", id="expired-certificate-from-the-client-ca"),
])
async def test_mutual_tls_refuses_a_client_without_a_valid_certificate(
        mtls_port: int, pki: Pki, identity: str | None) -> None:
    await _refused(mtls_port, _credentials(pki.server_ca, getattr(pki, identity) if identity else None))
    assert await _health(mtls_port, _credentials(pki.server_ca, pki.client)) == SERVING  # the server goes on


async def test_mutual_tls_refuses_plaintext(mtls_port: int) -> None:
    await _refused(mtls_port, None)


# --- configuration the server refuses -----------------------------------------------------------------

def test_settings_read_tls_from_the_environment(pki: Pki) -> None:
    assert Settings.from_env({}).tls is None
    env = {"FOOTHILLS_TLS_CERT": str(pki.server.cert_path), "FOOTHILLS_TLS_KEY": f" {pki.server.key_path} "}
    assert Settings.from_env(env).tls == TlsSettings(cert=pki.server.cert_path, key=pki.server.key_path)
    env["FOOTHILLS_TLS_CLIENT_CA"] = str(pki.client_ca.cert_path)
    assert Settings.from_env(env).tls == TlsSettings(cert=pki.server.cert_path, key=pki.server.key_path,
                                                     client_ca=pki.client_ca.cert_path)


@pytest.mark.parametrize(("names", "message"), [
    pytest.param(("CERT",), "FOOTHILLS_TLS_KEY is not set", id="cert-without-key"),
    pytest.param(("KEY",), "FOOTHILLS_TLS_CERT is not set", id="key-without-cert"),
    pytest.param(("CERT", "CLIENT_CA"), "FOOTHILLS_TLS_KEY is not set", id="client-ca-and-cert-without-key"),
    pytest.param(("CLIENT_CA",), "FOOTHILLS_TLS_CLIENT_CA needs FOOTHILLS_TLS_CERT and FOOTHILLS_TLS_KEY",
                 id="client-ca-without-tls"),
])
def test_incomplete_tls_settings_are_refused(names: tuple[str, ...], message: str) -> None:
    env = {f"FOOTHILLS_TLS_{name}": f"/etc/foothills/{name.lower()}.pem" for name in names}
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def _bad_files(pki: Pki, case: str) -> tuple[TlsSettings, str]:
    """TLS settings that must not start a server, and a pattern of the message that says why."""
    folder = pki.folder
    good = TlsSettings(cert=pki.server.cert_path, key=pki.server.key_path, client_ca=pki.client_ca.cert_path)
    garbage = folder / "garbage.pem"
    garbage.write_text("not a certificate\n")
    encrypted = folder / "encrypted.key"
    encrypted.write_bytes(pki.server.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"a passphrase")))
    missing = folder / "missing.pem"
    cases = {
        "missing-cert": (TlsSettings(cert=missing, key=good.key),
                         re.escape(f"cannot read FOOTHILLS_TLS_CERT ({missing}): No such file or directory")),
        "missing-key": (TlsSettings(cert=good.cert, key=missing),
                        re.escape(f"cannot read FOOTHILLS_TLS_KEY ({missing}): No such file or directory")),
        "cert-is-a-folder": (TlsSettings(cert=folder, key=good.key),
                             re.escape(f"cannot read FOOTHILLS_TLS_CERT ({folder}): Is a directory")),
        "missing-client-ca": (TlsSettings(cert=good.cert, key=good.key, client_ca=missing),
                              re.escape(f"cannot read FOOTHILLS_TLS_CLIENT_CA ({missing}): No such file")),
        "cert-not-pem": (TlsSettings(cert=garbage, key=good.key), "FOOTHILLS_TLS_CERT .* is not a PEM certificate"),
        "key-not-pem": (TlsSettings(cert=good.cert, key=garbage),
                        "FOOTHILLS_TLS_KEY .* is not an unencrypted PEM private key"),
        "cert-and-key-swapped": (TlsSettings(cert=good.key, key=good.cert),
                                 "FOOTHILLS_TLS_CERT .* is not a PEM certificate"),
        "encrypted-key": (TlsSettings(cert=good.cert, key=encrypted),
                          "FOOTHILLS_TLS_KEY .* is not an unencrypted PEM private key"),
        "key-of-another-certificate": (TlsSettings(cert=good.cert, key=pki.client.key_path),
                                       "FOOTHILLS_TLS_KEY .* is not the key of the certificate in FOOTHILLS_TLS_CERT"),
        "client-ca-not-pem": (TlsSettings(cert=good.cert, key=good.key, client_ca=garbage),
                              "FOOTHILLS_TLS_CLIENT_CA .* holds no PEM CA certificate"),
    }
    return cases[case]


@pytest.mark.parametrize("case", [
    "missing-cert", "missing-key", "cert-is-a-folder", "missing-client-ca", "cert-not-pem", "key-not-pem",
    "cert-and-key-swapped", "encrypted-key", "key-of-another-certificate", "client-ca-not-pem"])
async def test_the_server_refuses_to_start_on_unusable_tls_files(
        pki: Pki, sqlite_template: Path, tmp_path: Path, case: str) -> None:
    tls, message = _bad_files(pki, case)
    database = tmp_path / "refused.db"
    shutil.copy(sqlite_template, database)
    port = free_port()
    components = build_components(make_settings(f"sqlite:///{database}", tls=tls, outbox_dir=tmp_path / "outbox"))
    try:
        with pytest.raises(ConfigError, match=message):
            await FoothillsServer(components).start(f"127.0.0.1:{port}")
    finally:
        components.hasher.close()
        await components.db.dispose()
    async with _channel(port, None) as channel:  # nothing listens: it refused before binding
        with pytest.raises(grpc.aio.AioRpcError) as nobody:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
    assert nobody.value.code() == grpc.StatusCode.UNAVAILABLE


# --- the command line and grpcurl -----------------------------------------------------------------------

def _serve(folder: Path, port: int, **tls: str) -> subprocess.Popen[bytes]:
    env = {**server_env(folder), **tls}
    with (folder / "server.log").open("wb") as log, (folder / "server.out").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=log)


@pytest.mark.parametrize(("tls", "message"), [
    pytest.param({"FOOTHILLS_TLS_CERT": "server.crt"}, "FOOTHILLS_TLS_KEY is not set", id="cert-without-key"),
    pytest.param({"FOOTHILLS_TLS_CERT": "server.crt", "FOOTHILLS_TLS_KEY": "absent.key"},
                 "cannot read FOOTHILLS_TLS_KEY (absent.key): No such file or directory", id="unreadable-key"),
])
def test_serve_exits_with_a_configuration_error(pki: Pki, tmp_path: Path, tls: dict[str, str], message: str) -> None:
    shutil.copy(pki.server.cert_path, tmp_path / "server.crt")
    process = _serve(tmp_path, free_port(), **tls)
    try:
        code = process.wait(timeout=START_TIMEOUT)
    finally:
        stop_process(process)
    log = (tmp_path / "server.log").read_text()
    assert code == 2, log
    assert f"configuration error: {message}" in log


def _grpcurl(port: int, *args: str, flags: tuple[str, ...], data: dict[str, Any] | None = None,
             headers: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    assert GRPCURL is not None
    command = [GRPCURL, *flags]
    for header in headers:
        command += ["-H", header]
    if data is not None:
        command += ["-d", json.dumps(data)]
    return subprocess.run([*command, f"127.0.0.1:{port}", *args], capture_output=True, text=True,
                          timeout=START_TIMEOUT, check=False)


@pytest.fixture(scope="module")
def tls_serve(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """`foothills-rpc serve` with TLS on a SQLite file, generating its own JWT secret; waits until SERVING."""
    if GRPCURL is None:
        pytest.fail("no grpcurl binary beside the interpreter or on PATH: install the dev group (uv sync)")
    folder = tmp_path_factory.mktemp("tls-serve")
    port = free_port()
    process = _serve(folder, port, FOOTHILLS_TLS_CERT=str(pki.server.cert_path),
                     FOOTHILLS_TLS_KEY=str(pki.server.key_path))
    log = folder / "server.log"
    try:
        deadline, last = time.monotonic() + START_TIMEOUT, ""
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode} before serving:\n{log.read_text()}")
            check = _grpcurl(port, "grpc.health.v1.Health/Check",
                             flags=("-cacert", str(pki.server_ca.cert_path), "-connect-timeout", "1"))
            if check.returncode == 0 and json.loads(check.stdout) == {"status": "SERVING"}:
                break
            last = check.stdout + check.stderr
            if time.monotonic() > deadline:
                pytest.fail(f"not SERVING within {START_TIMEOUT}s (last grpcurl: {last.strip()}):\n{log.read_text()}")
            time.sleep(0.05)  # between polls only; readiness is the health answer
        yield port, log
    finally:
        code = stop_process(process, timeout=STOP_TIMEOUT)
    assert code == 0, f"exit {code} after SIGTERM (None: killed after {STOP_TIMEOUT}s):\n{log.read_text()}"


@pytest.mark.e2e
def test_grpcurl_with_cacert_signs_in_over_tls(tls_serve: tuple[int, Path], pki: Pki) -> None:
    port, log = tls_serve
    tls = ("-cacert", str(pki.server_ca.cert_path))
    email = "tess.grpcurl@example.com"
    auth = "foothills.auth.v1.AuthService"
    registered = _grpcurl(port, f"{auth}/Register", flags=tls,
                          data={"email": email, "password": PASSWORD, "display_name": "Tess"})
    assert registered.returncode == 0, registered.stderr
    login = _grpcurl(port, f"{auth}/Login", flags=tls, data={"email": email, "password": PASSWORD})
    assert login.returncode == 0, login.stderr
    token = json.loads(login.stdout)["credentials"]["access_token"]
    profile = _grpcurl(port, f"{auth}/GetProfile", flags=tls, headers=(f"authorization: Bearer {token}",))
    assert profile.returncode == 0, profile.stderr
    assert json.loads(profile.stdout)["user"]["email"] == email
    assert "TLS on 127.0.0.1:" in log.read_text()

    # A refused handshake makes grpcurl retry until its connect timeout: keep that one short.
    plaintext = _grpcurl(port, "grpc.health.v1.Health/Check", flags=("-plaintext", "-connect-timeout", "1"))
    assert plaintext.returncode != 0 and "SERVING" not in plaintext.stdout, plaintext.stdout
    untrusted = _grpcurl(port, "grpc.health.v1.Health/Check",
                         flags=("-cacert", str(pki.stranger_ca.cert_path), "-connect-timeout", "1"))
    assert untrusted.returncode != 0 and "SERVING" not in untrusted.stdout, untrusted.stdout
    assert "certificate" in untrusted.stderr, untrusted.stderr


@pytest.mark.e2e
async def test_grpcurl_passes_mutual_tls_only_with_a_client_certificate(mtls_port: int, pki: Pki) -> None:
    """grpcurl runs as a child process while this event loop serves the in-process mutual-TLS server."""
    assert GRPCURL is not None

    async def health(*flags: str, refused: bool = True) -> tuple[int | None, str, str]:
        # A refused handshake makes grpcurl retry until its connect timeout: keep that one short.
        process = await asyncio.create_subprocess_exec(
            GRPCURL, "-cacert", str(pki.server_ca.cert_path), "-connect-timeout", "1" if refused else "10", *flags,
            f"127.0.0.1:{mtls_port}", "grpc.health.v1.Health/Check",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
        return process.returncode, out.decode(), err.decode()

    code, out, err = await health("-cert", str(pki.client.cert_path), "-key", str(pki.client.key_path), refused=False)
    assert code == 0, err
    assert json.loads(out) == {"status": "SERVING"}
    code, out, err = await health()
    assert code != 0 and "SERVING" not in out, (out, err)
    code, out, err = await health("-cert", str(pki.stranger.cert_path), "-key", str(pki.stranger.key_path))
    assert code != 0 and "SERVING" not in out, (out, err)
