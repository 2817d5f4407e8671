"""Token buckets and signed sessions, driven by an explicit clock."""

from __future__ import annotations

from aetherius.api.auth import SessionSigner
from aetherius.ratelimit import RateLimiter


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
    cookie, session_id = signer.issue(token_id="7")
    assert signer.verify(cookie) == (session_id, "7")
    assert SessionSigner(secret="s3cret", ttl_seconds=-1).verify(cookie) is None, "expired"
    payload, _, rest = cookie.partition(".")
    forged = ("A" if payload[0] != "A" else "B") + payload[1:]  # another payload, the same signature
    assert signer.verify(f"{forged}.{rest}") is None
    assert signer.verify("garbage") is None
    assert SessionSigner(secret="other", ttl_seconds=60).verify(cookie) is None


def test_cookies_and_csrf_values_of_any_content_are_refused_not_crashed() -> None:
    signer = SessionSigner(secret="s3cret", ttl_seconds=60)
    cookie, session_id = signer.issue(token_id="7")
    for hostile in ("ünïcödé", "\udc80", cookie[:-2] + "é", "\x00", "a" * 10_000, "..", ""):
        assert signer.verify(hostile) is None
        assert not signer.check_csrf(session_id, hostile)


def test_a_session_cookie_is_checked_against_a_known_signature() -> None:
    """Not only against our own verify: itsdangerous' own serializer reads what we sign."""
    from itsdangerous import URLSafeTimedSerializer

    cookie, session_id = SessionSigner(secret="s3cret", ttl_seconds=60).issue(token_id="7")
    assert URLSafeTimedSerializer("s3cret", salt="aetherius-session").loads(cookie) == {
        "sid": session_id,
        "tid": "7",
    }


def test_csrf_token_is_bound_to_the_session() -> None:
    signer = SessionSigner(secret="s3cret", ttl_seconds=60)
    token = signer.csrf_token("session-a")
    assert signer.check_csrf("session-a", token)
    assert not signer.check_csrf("session-b", token)
    assert not signer.check_csrf("session-a", None)
