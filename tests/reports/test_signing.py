"""The webhook signature against vectors computed elsewhere, not against our own ``verify``.

A receiver recomputes ``HMAC-SHA256(secret, "<timestamp>.<body>")``; if ``sign`` drifted (another
separator, the timestamp after the body) while ``verify`` drifted with it, a test that checks
one with the other would still pass. The vector below was computed with OpenSSL:
``printf '1700000000.{"event":"new"}' | openssl dgst -sha256 -hmac 's3cret-key'``; the test also
asks the machine's OpenSSL again for a body of its own.
"""

from __future__ import annotations

import shutil
import subprocess

from aetherius.reports.sinks import sign, verify

VECTOR = "sha256=3e6cea5c1616e322800278a1dbd8af6ce3ead9582c9399bc46361116b415cf9d"


def test_the_signature_matches_a_vector_computed_by_openssl() -> None:
    assert sign("s3cret-key", 1700000000, b'{"event":"new"}') == VECTOR
    assert verify("s3cret-key", "1700000000", b'{"event":"new"}', VECTOR)
    assert not verify("s3cret-key", "1700000001", b'{"event":"new"}', VECTOR)
    assert not verify("s3cret-key", "not-a-time", b'{"event":"new"}', VECTOR)


def test_the_signature_matches_openssl_on_a_body_of_its_own() -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for an independent HMAC"
    body = '{"incident":{"id":42,"summary":"naïve ☃ — quotes \\" and newlines\\n"}}'.encode()
    result = subprocess.run(
        [openssl, "dgst", "-sha256", "-hmac", "another secret"],
        input=b"1733400000." + body,
        capture_output=True,
        check=True,
        timeout=30,
    )
    digest = result.stdout.decode().split()[-1]
    assert sign("another secret", 1733400000, body) == f"sha256={digest}"
