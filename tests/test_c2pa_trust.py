"""Offline trust lists for C2PA signers (issue #20): a local test CA made here, a JPEG signed under
it with c2pa-python's Builder (offline), read with and without the CA as a trust anchor."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from fakescope_cli.evidence import c2pa as reader
from fakescope_cli.evidence import c2pa_trust
from fakescope_cli.media import Media
from fakescope_cli.record import run_header

from .conftest import run_cli

lib = pytest.importorskip("c2pa")
x509 = pytest.importorskip("cryptography.x509")

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fakescope tests")])


def _usage(signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signing, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
                         crl_sign=not signing, encipher_only=False, decipher_only=False)


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A capture signed offline by a leaf certificate under a test CA; the CA and a stranger CA."""
    folder = tmp_path_factory.mktemp("trust")
    ca, ca_key = _ca("fakescope test CA")
    stranger, _ = _ca("some other CA")
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name("fakescope test signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    signer = lib.Signer.from_info(lib.C2paSignerInfo(b"es256", _pem(leaf) + _pem(ca), key_pem, None))
    manifest = {"claim_generator_info": [{"name": "fakescope-test", "version": "1"}], "title": "capture.jpg",
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}]}}]}
    source = io.BytesIO()
    Image.new("RGB", (32, 32), (20, 160, 60)).save(source, "JPEG")
    source.seek(0)
    out = io.BytesIO()
    with lib.Builder(manifest, lib.Context.from_dict(reader.OFFLINE_SETTINGS)) as builder:
        builder.sign(signer, "image/jpeg", source, out)
    paths = {"image": folder / "capture.jpg", "ca": folder / "ca.pem", "stranger": folder / "stranger.pem",
             "settings": folder / "c2pa-settings.json"}
    paths["image"].write_bytes(out.getvalue())
    paths["ca"].write_bytes(_pem(ca))
    paths["stranger"].write_bytes(_pem(stranger))
    paths["settings"].write_text(json.dumps({
        "trust": {"trust_anchors": _pem(ca).decode()},
        "verify": {"remote_manifest_fetch": True, "ocsp_fetch": True},  # must be switched off again
    }))
    return paths


def _item(path: Path):
    (item,) = reader.read(Media.open(path))
    return item


@pytest.fixture(autouse=True)
def _no_trust_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(c2pa_trust.TRUST_ANCHORS_ENV, raising=False)
    monkeypatch.delenv(c2pa_trust.SETTINGS_ENV, raising=False)


def test_without_a_trust_list_the_signer_is_untrusted_not_tampered(signed: dict[str, Path]) -> None:
    item = _item(signed["image"])
    d = item.details
    assert d["signer_untrusted"] is True and d["validation_outcome"] == "valid"
    assert "trust" in {f["class"] for f in d["validation_failures"]} <= {"trust", "not-checked"}
    assert d["trust_lists"] == []
    assert "none configured" in item.summary and "FAIL" not in item.summary


def test_the_trust_list_makes_the_signer_trusted_offline(signed: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c2pa_trust.TRUST_ANCHORS_ENV, str(signed["ca"]))
    item = _item(signed["image"])
    d = item.details
    assert d["validation_state"] == "Trusted" and d["validation_outcome"] == "trusted"
    assert d["signer_untrusted"] is False
    assert not [f for f in d["validation_failures"] if f["code"] == reader.UNTRUSTED]
    (used,) = d["trust_lists"]
    assert used["sha256"] == hashlib.sha256(signed["ca"].read_bytes()).hexdigest()
    assert used["file"] == "ca.pem" and used["certificates"] == 1
    assert "signer trusted by ca.pem" in item.summary
    assert item.signal == "camera"  # a validated capture claim, still weak


def test_another_ca_leaves_the_signer_untrusted(signed: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c2pa_trust.TRUST_ANCHORS_ENV, str(signed["stranger"]))
    d = _item(signed["image"]).details
    assert d["signer_untrusted"] is True and d["validation_outcome"] == "valid"
    assert d["trust_lists"][0]["file"] == "stranger.pem"


def test_a_settings_file_works_and_stays_offline(signed: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c2pa_trust.SETTINGS_ENV, str(signed["settings"]))
    d = _item(signed["image"]).details
    assert d["validation_outcome"] == "trusted"
    assert d["trust_lists"][0]["kind"] == "c2pa-settings"
    settings = reader._settings(c2pa_trust.configured()[0])
    assert settings["verify"]["remote_manifest_fetch"] is False and settings["verify"]["ocsp_fetch"] is False
    assert settings["core"]["allowed_network_hosts"] == []


def test_run_header_records_the_list(signed: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_header([], None, "2026-01-01T00:00:00Z")["c2pa_trust"] is None
    monkeypatch.setenv(c2pa_trust.TRUST_ANCHORS_ENV, str(signed["ca"]))
    (used,) = run_header([], None, "2026-01-01T00:00:00Z")["c2pa_trust"]
    assert used["sha256"] == hashlib.sha256(signed["ca"].read_bytes()).hexdigest()


def test_a_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "list.pem"
    bad.write_text("not a certificate")
    with pytest.raises(c2pa_trust.TrustConfigError, match="no PEM certificate"):
        c2pa_trust.check_file(str(bad), "trust-anchors")


@pytest.mark.slow
def test_cli_option_trusts_the_signer_and_records_the_list(signed: dict[str, Path]) -> None:
    out = run_cli("scan", "--no-pixels", "-f", "json", "--trust-anchors", str(signed["ca"]), str(signed["image"]))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    sha = hashlib.sha256(signed["ca"].read_bytes()).hexdigest()
    assert doc["run"]["c2pa_trust"][0]["sha256"] == sha
    (record,) = doc["results"]
    (c2pa_item,) = [e for e in record["evidence"] if e["source"] == "c2pa"]
    assert c2pa_item["details"]["validation_outcome"] == "trusted"
    assert c2pa_item["details"]["trust_lists"][0]["sha256"] == sha
    missing = run_cli("scan", "--no-pixels", "--trust-anchors", str(signed["ca"].parent / "absent.pem"),
                      str(signed["image"]))
    assert missing.returncode == 2 and "--trust-anchors" in missing.stderr.decode()


@pytest.mark.slow
def test_merge_keeps_the_shards_trust_list(signed: dict[str, Path], tmp_path: Path) -> None:
    from fakescope_cli.merge import merge_files

    shard = tmp_path / "shard.jsonl"
    out = run_cli("scan", "--no-pixels", "-f", "jsonl", "-o", str(shard), "--trust-anchors", str(signed["ca"]),
                  str(signed["image"]))
    assert out.returncode == 0, out.stderr
    merged = merge_files([str(shard)], ["merge", str(shard)])  # this process has no trust list configured
    (used,) = merged.header["c2pa_trust"]
    assert used["sha256"] == hashlib.sha256(signed["ca"].read_bytes()).hexdigest()
