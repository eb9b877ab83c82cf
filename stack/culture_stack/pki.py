"""The local Kubernetes control plane's PKI: pure builders (a CA, leaf certificates, the
service-account key pair, a kubeconfig), then one writer (`ensure_pki`) that creates what is missing
in a directory and renews what is about to expire. Used by the stack's kube servers and the cluster's
node components."""

from __future__ import annotations

import base64
import datetime
import ipaddress
from pathlib import Path
from typing import Any

from culture_stack.console import say
from culture_stack.ports import HOST

SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's address, named in the serving certificate
CLUSTER_NAME = "culture-local"
FRONT_PROXY_CLIENT = "front-proxy-client"  # the CN the API server uses towards aggregated API servers

_DAY = datetime.timedelta(days=1)


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name: str = "culture-local-ca", days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed CA: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY).not_valid_after(now + days * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem_cert(cert), _pem_key(key)


def make_cert(ca_cert_pem: bytes, ca_key_pem: bytes, *, common_name: str,
              organizations: tuple[str, ...] = (), dns_names: tuple[str, ...] = (),
              ips: tuple[str, ...] = (), server: bool = False, client: bool = False,
              days: int = 1825) -> tuple[bytes, bytes]:
    """A leaf certificate signed by the CA: (certificate PEM, key PEM).

    Kubernetes reads the user name from CN and the groups from O (e.g. O=system:masters).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = _new_key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY).not_valid_after(now + days * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if dns_names or ips:
        sans = [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _pem_cert(builder.sign(ca_key, hashes.SHA256())), _pem_key(key)


def make_service_account_keys() -> tuple[bytes, bytes]:
    """The key pair that signs service-account tokens: (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization

    key = _new_key()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return _pem_key(key), public


#: leaf certificates: file stem -> make_cert keyword arguments
LEAF_CERTS: dict[str, dict[str, Any]] = {
    "apiserver": {
        "common_name": "kube-apiserver", "server": True,
        "dns_names": ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                      "kubernetes.default.svc.cluster.local"),
        "ips": (HOST, SERVICE_IP),
    },
    "admin": {"common_name": "admin", "organizations": ("system:masters",), "client": True},
    # the bootstrap RBAC policy binds the controller manager's role to exactly this user name
    "controller-manager": {"common_name": "system:kube-controller-manager", "client": True},
    "controller-manager-serving": {"common_name": "kube-controller-manager", "server": True,
                                   "dns_names": ("localhost",), "ips": (HOST,)},
}


def cert_fresh(path: Path, min_days: int = 30) -> bool:
    """Whether the certificate at `path` exists and is valid for at least `min_days` more days."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left > min_days * _DAY


def write_private(path: Path, data: bytes) -> None:
    """Write a secret (a key, a kubeconfig) readable by its owner only."""
    path.write_bytes(data)
    path.chmod(0o600)


def ensure_pki(pki: Path) -> Path:
    """Create the CA, certificates and service-account keys in `pki` once; renew only what is missing
    or about to expire (the CA and SA keys are kept, so existing tokens and kubeconfigs stay valid)."""
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    if not ((pki / "ca.crt").exists() and (pki / "ca.key").exists()):
        say(f"  kube: creating the local certificate authority in {pki}")
        cert, key = make_ca()
        write_private(pki / "ca.key", key)
        (pki / "ca.crt").write_bytes(cert)
        for stem in LEAF_CERTS:  # leaves of an older CA are useless now
            (pki / f"{stem}.crt").unlink(missing_ok=True)
    ca_cert, ca_key = (pki / "ca.crt").read_bytes(), (pki / "ca.key").read_bytes()
    for stem, spec in LEAF_CERTS.items():
        if not ((pki / f"{stem}.key").exists() and cert_fresh(pki / f"{stem}.crt")):
            say(f"  kube: issuing the {stem} certificate")
            cert, key = make_cert(ca_cert, ca_key, **spec)
            write_private(pki / f"{stem}.key", key)
            (pki / f"{stem}.crt").write_bytes(cert)
    # the aggregation layer's front proxy has a CA of its own, as upstream recommends; with it the
    # API server publishes the request-header CA that delegating components (the controller
    # manager, aggregated API servers) need
    if not ((pki / "front-proxy-ca.crt").exists() and (pki / "front-proxy-ca.key").exists()):
        say("  kube: creating the front-proxy certificate authority")
        cert, key = make_ca("culture-local-front-proxy-ca")
        write_private(pki / "front-proxy-ca.key", key)
        (pki / "front-proxy-ca.crt").write_bytes(cert)
        (pki / "front-proxy-client.crt").unlink(missing_ok=True)
    if not ((pki / "front-proxy-client.key").exists() and cert_fresh(pki / "front-proxy-client.crt")):
        say("  kube: issuing the front-proxy-client certificate")
        fp_cert, fp_key = (pki / "front-proxy-ca.crt").read_bytes(), (pki / "front-proxy-ca.key").read_bytes()
        cert, key = make_cert(fp_cert, fp_key, common_name=FRONT_PROXY_CLIENT, client=True)
        write_private(pki / "front-proxy-client.key", key)
        (pki / "front-proxy-client.crt").write_bytes(cert)
    if not ((pki / "sa.key").exists() and (pki / "sa.pub").exists()):
        say("  kube: creating the service-account signing key pair")
        private, public = make_service_account_keys()
        write_private(pki / "sa.key", private)
        (pki / "sa.pub").write_bytes(public)
    return pki


def build_kubeconfig(*, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, user: str,
                     cluster: str = CLUSTER_NAME) -> dict[str, Any]:
    """A self-contained kubeconfig (certificates embedded, so it can be copied anywhere)."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster,
                      "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem),
                                          "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }
