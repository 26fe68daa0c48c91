"""Real video files for the tests, encoded with PyAV (FFmpeg), and a C2PA signer made on the spot.

Boxes are added after the muxer's last box (FFmpeg writes 'moov' after 'mdat' unless asked for
faststart), so no chunk offset moves: a top-level XMP 'uuid' box is appended, a header field is
patched in place.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def encode(path: Path, codec: str = "libx264", *, fmt: str | None = None, frames: int = 48, size=(320, 240),
           fps: int = 24, metadata: dict[str, str] | None = None, options: dict[str, str] | None = None) -> Path:
    """A clip of moving colour bars; each frame differs, so every sample is a real decoded frame."""
    container = av.open(str(path), "w", format=fmt, options=options or {})
    if metadata:
        container.metadata.update(metadata)
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    w, h = size
    ramp = np.linspace(0, 255, w, dtype=np.uint8)
    for i in range(frames):
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[..., 0] = np.roll(ramp, i * 7)[None, :]
        rgb[..., 1] = (i * 5) % 256
        rgb[h // 3: h // 2, : (i * 11) % w, 2] = 220
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def phone_mov(path: Path) -> Path:
    """A MOV with the metadata keys an iPhone writes (QuickTime 'keys'/'ilst' in moov/meta)."""
    return encode(path, fmt="mov", frames=30, fps=30, options={"movflags": "use_metadata_tags"}, metadata={
        "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15 Pro",
        "com.apple.quicktime.software": "17.4.1",
        "com.apple.quicktime.creationdate": "2024-05-01T10:00:00+0200",
        "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/"})


def xmp_packet(dst: str, tool: str = "") -> bytes:
    creator = f"<xmp:CreatorTool>{tool}</xmp:CreatorTool>" if tool else ""
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
            f'<Iptc4xmpExt:DigitalSourceType>{dst}</Iptc4xmpExt:DigitalSourceType>{creator}'
            '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def with_xmp_box(path: Path, packet: bytes) -> Path:
    """Append a top-level XMP 'uuid' box (XMP Specification Part 3) to an MP4."""
    box = (24 + len(packet)).to_bytes(4, "big") + b"uuid" + XMP_UUID + packet
    path.write_bytes(path.read_bytes() + box)
    return path


def patch_box(path: Path, kind: bytes, offset: int, value: int, width: int = 4) -> Path:
    """Overwrite a big-endian field `offset` bytes into the payload of the first box `kind` (found
    by walking the boxes, not by searching the bytes: 'avc1' is also a brand in 'ftyp')."""
    from fakescope_cli import bmff

    data = bytearray(path.read_bytes())
    box = next(b for b in bmff.walk(bytes(data)) if b.kind == kind)
    data[box.body + offset: box.body + offset + width] = value.to_bytes(width, "big")
    path.write_bytes(bytes(data))
    return path


def declare_duration(path: Path, seconds: int) -> Path:
    """Forge mvhd's duration (version 0: timescale at +12, duration at +16)."""
    from fakescope_cli import bmff

    data = path.read_bytes()
    body = next(b for b in bmff.walk(data) if b.kind == b"mvhd").body
    scale = int.from_bytes(data[body + 12: body + 16], "big")
    return patch_box(path, b"mvhd", 16, seconds * scale)


def declare_size(path: Path, width: int, height: int) -> Path:
    """Forge the picture size in tkhd (16.16 fixed, at +76) and in the avc1 sample entry (+24)."""
    patch_box(path, b"tkhd", 76, width << 16)
    patch_box(path, b"tkhd", 80, height << 16)
    patch_box(path, b"avc1", 24, width, 2)
    return patch_box(path, b"avc1", 26, height, 2)


def test_signer():
    """A C2PA signer with a throwaway CA and end-entity certificate (ES256), made offline."""
    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fakescope tests")])

    now = dt.datetime.now(dt.timezone.utc)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("fakescope test CA")).issuer_name(name("fakescope test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("fakescope test signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=private, ta_url=None))


test_signer.__test__ = False  # a helper, not a test


def sign_c2pa(src: Path, dst: Path, digital_source_type: str = TRAINED, generator: str = "test-video-generator") -> Path:
    """An offline-signed copy of an MP4 whose manifest declares how it was made."""
    import c2pa

    manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": dst.name,
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": digital_source_type}]}}]}
    builder = c2pa.Builder(json.dumps(manifest))
    with open(src, "rb") as source, open(dst, "w+b") as dest:
        builder.sign(test_signer(), "video/mp4", source, dest)
    return dst
