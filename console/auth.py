"""Who is asking: the identity behind a request, from the load balancer's signed token or a local sign-in.

Behind an Application Load Balancer rule with `authenticate-oidc`, the ALB signs the user's claims into
`x-amzn-oidc-data`: a JWT whose header names the key (`kid`) and the load balancer (`signer`), signed
ES256 with a regional key served at `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`. The app
checks it itself on every request — the signature with that key, the signer against the configured ALB
(a token from another ALB of the account, or a request that bypassed the ALB, is refused), the expiry —
so that nothing reaching the task directly can pass as someone.

Locally (`CONSOLE_AUTH=local`) there is no ALB: `run` prints a one-time link; following it starts a
session held in this process's memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ALB_TOKEN_HEADER = "x-amzn-oidc-data"
SESSION_COOKIE = "bu_console_session"
_KID = re.compile(r"^[A-Za-z0-9-]{1,128}$")  # it goes into a URL: nothing else is fetched


class NotSignedIn(Exception):
    """The request carries no valid identity; the message says why (logged, never shown with the token)."""


@dataclass(frozen=True)
class Identity:
    email: str
    name: str
    groups: frozenset[str]


def _segment(part: str) -> dict[str, Any]:
    # The ALB pads its base64url segments with '='; decode either way.
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError) as error:
        raise NotSignedIn(f"malformed token: {error}") from None
    if not isinstance(value, dict):
        raise NotSignedIn("malformed token header")
    return value


def fetch_key(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:  # the region's ALB key endpoint (HTTPS)
        body: bytes = reply.read(16384)
    return body.decode()


class AlbTokenVerifier:
    """Checks `x-amzn-oidc-data`. Keys are kept by `kid` once fetched (the ALB rotates by using new IDs)."""

    def __init__(self, alb_arn: str, keys_url: str, *, groups_claim: str = "groups",
                 fetch: Callable[[str], str] = fetch_key, leeway_seconds: int = 5) -> None:
        self._alb_arn, self._keys_url = alb_arn, keys_url.rstrip("/")
        self._groups_claim, self._fetch, self._leeway = groups_claim, fetch, leeway_seconds
        self._keys: dict[str, EllipticCurvePublicKey] = {}
        self._missing: dict[str, float] = {}  # key IDs the endpoint did not serve, until when not asked again
        self._lock = threading.Lock()

    def identity(self, token: str | None) -> Identity:
        if not token:
            raise NotSignedIn(f"no {ALB_TOKEN_HEADER} header: not reached through the load balancer")
        parts = token.split(".")
        if len(parts) != 3:
            raise NotSignedIn("malformed token")
        header = _segment(parts[0])
        if header.get("alg") != "ES256":
            raise NotSignedIn(f"token algorithm {header.get('alg')!r}, expected ES256")
        if header.get("signer") != self._alb_arn:
            # Checked before any key is fetched: another load balancer's token is refused outright.
            raise NotSignedIn(f"token signed by {header.get('signer')!r}, not this console's load balancer")
        expires = header.get("exp")
        if isinstance(expires, int | float) and expires + self._leeway < time.time():
            raise NotSignedIn("token expired")  # the ALB states the expiry in the header too
        kid = str(header.get("kid", ""))
        if not _KID.match(kid):
            raise NotSignedIn("token has no usable key ID")
        try:
            claims = jwt.decode(token, self._key(kid), algorithms=["ES256"], leeway=self._leeway,
                                options={"require": ["exp"], "verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise NotSignedIn("token expired") from None
        except jwt.InvalidTokenError as error:
            raise NotSignedIn(f"token refused: {error}") from None
        email = str(claims.get("email") or "").strip().lower()
        if not email:
            raise NotSignedIn("token has no email claim (ask the identity provider for the email scope)")
        verified = claims.get("email_verified")
        if verified is not None and str(verified).lower() != "true":  # admin rights rest on the email
            raise NotSignedIn("the identity provider says this email is not verified")
        groups = claims.get(self._groups_claim) or []
        if isinstance(groups, str):
            groups = [g for g in re.split(r"[,\s]+", groups) if g]
        return Identity(email, str(claims.get("name") or email), frozenset(str(g) for g in groups))

    def _key(self, kid: str) -> EllipticCurvePublicKey:
        with self._lock:
            key = self._keys.get(kid)
            missing_until = self._missing.get(kid, 0.0)
        if key is not None:
            return key
        if missing_until > time.monotonic():  # made-up key IDs do not each hold a worker on a fetch
            raise NotSignedIn(f"public key {kid} not available (asked less than a minute ago)")
        try:
            loaded = load_pem_public_key(self._fetch(f"{self._keys_url}/{kid}").encode())
        except (OSError, ValueError) as error:
            with self._lock:
                if len(self._missing) > 1024:
                    self._missing.clear()
                self._missing[kid] = time.monotonic() + 60
            raise NotSignedIn(f"public key {kid} not available: {error}") from None
        if not isinstance(loaded, EllipticCurvePublicKey):
            raise NotSignedIn(f"public key {kid} is not an EC key")
        with self._lock:
            if len(self._keys) > 64:  # key IDs come from requests: keep the cache bounded
                self._keys.clear()
            self._keys[kid] = loaded
        return loaded


class LocalLogin:
    """One-time sign-in links and the sessions they start, for `CONSOLE_AUTH=local` (one process)."""

    SESSION_SECONDS = 12 * 3600

    def __init__(self, email: str, *, clock: Callable[[], float] = time.time) -> None:
        self._email, self._clock = email, clock
        self._tokens: set[str] = set()
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()

    def link(self) -> str:
        """A new path that signs in once."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return f"/login?token={token}"

    def redeem(self, token: str) -> str:
        """The new session's ID for a link's token; the token is then spent."""
        with self._lock:
            match = next((t for t in self._tokens if secrets.compare_digest(t, token)), None)
            if match is None:
                raise NotSignedIn("this sign-in link was already used or is not this console's")
            self._tokens.discard(match)
            session = secrets.token_urlsafe(32)
            self._sessions[session] = self._clock() + self.SESSION_SECONDS
        return session

    def identity(self, session: str | None) -> Identity:
        now = self._clock()
        with self._lock:
            expires = self._sessions.get(session or "")
            if expires is not None and expires <= now:
                del self._sessions[session or ""]
                expires = None
        if expires is None:
            raise NotSignedIn("not signed in: follow the link the console printed at start-up")
        return Identity(self._email, self._email, frozenset())

    def sign_out(self, session: str | None) -> None:
        with self._lock:
            self._sessions.pop(session or "", None)
