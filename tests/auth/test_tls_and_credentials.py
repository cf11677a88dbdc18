"""Transport and credential failures: a wrong CA, an expired or foreign client
certificate, plaintext against TLS, a bad or wrong-role token are all refused;
certificates name principals through their SPIFFE URI SAN; the credentials file
holds no token; services refuse to start without TLS unless told --insecure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from services.common.auth import certs
from services.common.auth.principals import Role, from_spiffe_id
from services.common.auth.tokens import TokenStore
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.security import INSECURE_CHANNEL, ChannelSecurity
from tests.support.grpc_errors import reason_of
from tests.support.processes import ServiceProcess, console_script
from tests.support.security import mint_tokens, principal, shared_pki
from tests.support.stack import running_stack

CODER, GENERAL = "vp.coder.primary", "vp.general.primary"


async def _list(stack, security: ChannelSecurity):
    async with security.aio_channel(stack.registry_address) as channel:
        return await reg_grpc.SessionRegistryStub(channel).ListSessions(reg_pb.ListSessionsRequest(), timeout=5)


def _foreign(identity_uri: str, *, expired: bool = False, same_ca: bool = True) -> ChannelSecurity:
    pki = shared_pki()
    ca = certs.Issued(pki.credentials.ca.read_bytes(), (pki.credentials.tls / "ca.key").read_bytes()) \
        if same_ca else certs.create_ca("another CA")
    now = datetime.now(timezone.utc) - (timedelta(days=30) if expired else timedelta(0))
    leaf = certs.issue(ca, "foreign", uris=(identity_uri,), client=True, now=now, validity=timedelta(days=1))
    return ChannelSecurity(ca_pem=pki.credentials.ca.read_bytes(), cert_pem=leaf.cert_pem, key_pem=leaf.key_pem)


@pytest.fixture
async def stack(sqlite_url):
    async with running_stack(sqlite_url) as running:
        yield running


@pytest.mark.parametrize("case", ["wrong_ca_for_the_server", "client_cert_from_another_ca", "expired_client_cert",
                                  "no_client_cert", "plaintext"])
async def test_transport_failures_are_refused_before_any_call(stack, case):
    pki = shared_pki()
    security = {
        "wrong_ca_for_the_server": lambda: ChannelSecurity(
            ca_pem=certs.create_ca("not ours").cert_pem, cert_pem=pki.credentials.cert("operator").read_bytes(),
            key_pem=pki.credentials.key("operator").read_bytes()),
        "client_cert_from_another_ca": lambda: _foreign("spiffe://vp/operator/mallory", same_ca=False),
        "expired_client_cert": lambda: _foreign("spiffe://vp/operator/late", expired=True),
        "no_client_cert": lambda: pki.token_only(None),
        "plaintext": lambda: INSECURE_CHANNEL,
    }[case]()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _list(stack, security)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # ...while the right credentials get through on the same server.
    assert await _list(stack, pki.channel_security("operator")) is not None


async def test_a_valid_certificate_of_our_ca_names_its_principal(stack):
    ok = _foreign("spiffe://vp/operator/fresh")
    assert await _list(stack, ok) is not None
    workspace = f"/ws/{CODER}"
    async with _foreign(f"spiffe://vp/worker/{CODER}").aio_channel(stack.registry_address) as channel:
        registry = reg_grpc.SessionRegistryStub(channel)
        await registry.AcquireLease(reg_pb.AcquireLeaseRequest(vp_id=CODER, owner="w", workspace_dir=workspace))
        with pytest.raises(grpc.aio.AioRpcError) as other_lane:
            await registry.AcquireLease(reg_pb.AcquireLeaseRequest(vp_id=GENERAL, owner="w",
                                                                   workspace_dir=f"/ws/{GENERAL}"))
        assert reason_of(other_lane.value) == "NOT_YOUR_LANE"


def test_spiffe_ids_map_to_principals():
    assert from_spiffe_id("spiffe://vp/worker/vp.coder.primary").vp_ids == {"vp.coder.primary"}
    assert from_spiffe_id("spiffe://vp/operator/ops").role == Role.OPERATOR
    for bad in ("spiffe://other/worker/x", "spiffe://vp/admin/x", "spiffe://vp/worker/", "spiffe://vp/client/a/b",
                "https://vp/client/a"):
        assert from_spiffe_id(bad) is None, bad


@pytest.mark.parametrize("case", ["wrong_role", "invalid", "malformed"])
async def test_tokens_for_another_role_invalid_or_malformed_are_refused(sqlite_url, case, caplog):
    store, tokens = mint_tokens({"alice": principal(Role.CLIENT, "alice")})
    async with running_stack(sqlite_url, tokens=store, require_client_cert=False) as stack:
        security = shared_pki().token_only({"wrong_role": tokens["alice"], "invalid": "vpt_not-a-token",
                                          "malformed": None}[case])
        async with security.aio_channel(stack.registry_address) as channel:
            registry = reg_grpc.SessionRegistryStub(channel)
            metadata = (("authorization", "Basic YWxpY2U="),) if case == "malformed" else None
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await registry.RetireSession(reg_pb.RetireSessionRequest(vp_id=CODER), metadata=metadata)
    expected = {"wrong_role": (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"),
                "invalid": (grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN"),
                "malformed": (grpc.StatusCode.UNAUTHENTICATED, "MALFORMED_AUTHORIZATION")}[case]
    assert (refused.value.code(), reason_of(refused.value)) == expected
    # Every denial is logged with the principal and the method.
    logged = [r.getMessage() for r in caplog.records if r.name == "vp.auth"]
    principal_text = "client:alice" if case == "wrong_role" else "anonymous"
    assert [m for m in logged if "/vp.v1.SessionRegistry/RetireSession" in m and principal_text in m], logged


def test_the_credentials_file_stores_only_hashes(tmp_path):
    from services.common.auth.datadir import Credentials

    credentials = Credentials(tmp_path)
    credentials.ensure()
    text = credentials.tokens_file.read_text()
    for identity in ("client", "operator"):
        token = credentials.token(identity).read_text().strip()
        assert token not in text
        assert TokenStore.load(credentials.tokens_file).lookup(token).role == Role(identity)
        assert credentials.token(identity).stat().st_mode & 0o077 == 0
    assert (credentials.tls / "ca.key").stat().st_mode & 0o077 == 0


def test_services_refuse_plaintext_unless_told_insecure(sqlite_url):
    refused = ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", sqlite_url,
                              "--metrics-listen", "off"])
    assert refused.proc.wait(20) == 2
    assert "TLS is required" in refused.output
    with ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", sqlite_url,
                         "--metrics-listen", "off", "--insecure"]) as insecure:
        insecure.address()
        assert "NO authentication" in insecure.output
