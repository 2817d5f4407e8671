"""Token buckets and signed sessions, driven by an explicit clock."""

from __future__ import annotations

from aetherius.api.auth import SessionSigner
from aetherius.api.limits import RateLimiter


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.acquire("t", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("t", now=100.0)
    assert 0.49 < wait <= 0.5
    assert limiter.acquire("other", now=100.0) == 0.0  # buckets are per key
    assert limiter.acquire("t", now=100.5) == 0.0


def test_bucket_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=10)
    for n in range(50):
        limiter.acquire(f"k{n}", now=float(n))
    assert len(limiter._buckets) <= 10


def test_session_cookie_roundtrip_tamper_and_expiry() -> None:
    signer = SessionSigner(secret="s3cret", ttl_seconds=60)
    cookie, session_id = signer.issue(token_id="7", now=1000.0)
    assert signer.verify(cookie, now=1010.0) == (session_id, "7")
    assert signer.verify(cookie, now=1061.0) is None
    payload, _, sig = cookie.partition(".")
    assert signer.verify(payload + "." + sig[::-1], now=1010.0) is None
    assert signer.verify("garbage", now=1010.0) is None
    assert SessionSigner(secret="other", ttl_seconds=60).verify(cookie, now=1010.0) is None


def test_csrf_token_is_bound_to_the_session() -> None:
    signer = SessionSigner(secret="s3cret", ttl_seconds=60)
    token = signer.csrf_token("session-a")
    assert signer.check_csrf("session-a", token)
    assert not signer.check_csrf("session-b", token)
    assert not signer.check_csrf("session-a", None)
