"""The console's sign-in checks on their own: the ALB token (signature by the key of its `kid`, the signer,
the expiry, the algorithm) and the local one-time links."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from console.auth import AlbTokenVerifier, LocalLogin, NotSignedIn

ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/console/0123456789abcdef"
KID = "key-1"
KEY = ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _token(claims: dict[str, object] | None = None, *, key: ec.EllipticCurvePrivateKey = KEY, kid: str = KID,
           signer: str = ARN, expires_in: float = 60, padded: bool = False) -> str:
    body = {"email": "Ana@Example.com", "name": "Ana", "groups": ["g-admins"], "exp": int(time.time() + expires_in),
            **(claims or {})}
    if not padded:
        return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid, "signer": signer})
    # As the ALB writes it: base64url segments padded with '=', the signature over the padded segments.
    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode()

    signing_input = ".".join(segment(json.dumps(part).encode())
                             for part in ({"alg": "ES256", "kid": kid, "signer": signer, "typ": "JWT"}, body))
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), key)
    return f"{signing_input}.{segment(signature)}"


class Keys:
    def __init__(self, served: dict[str, str]) -> None:
        self.served, self.fetched = served, []

    def __call__(self, url: str) -> str:
        self.fetched.append(url)
        kid = url.rsplit("/", 1)[1]
        if kid not in self.served:
            raise OSError("404")
        return self.served[kid]


def _verifier(keys: Keys) -> AlbTokenVerifier:
    return AlbTokenVerifier(ARN, "https://public-keys.auth.elb.eu-west-1.amazonaws.com", fetch=keys)


def test_a_token_signed_by_the_alb_is_accepted_and_its_key_fetched_once() -> None:
    keys = Keys({KID: _pem(KEY)})
    verifier = _verifier(keys)
    for padded in (False, True):
        token = _token(padded=padded)
        assert ("=" in token) == padded
        identity = verifier.identity(token)
        assert (identity.email, identity.name, identity.groups) == ("ana@example.com", "Ana", frozenset({"g-admins"}))
    assert keys.fetched == [f"https://public-keys.auth.elb.eu-west-1.amazonaws.com/{KID}"]


@pytest.mark.parametrize("token, why", [
    (lambda: None, "no x-amzn-oidc-data"),
    (lambda: "", "no x-amzn-oidc-data"),
    (lambda: "abc.def", "malformed"),
    (lambda: _token(key=ec.generate_private_key(ec.SECP256R1())), "token refused"),  # forged: same kid, another key
    (lambda: _token(expires_in=-60), "expired"),
    (lambda: _token(signer=ARN.replace("console", "other")), "not this console's load balancer"),
    (lambda: _token(kid="../../evil"), "no usable key ID"),
    (lambda: _token(kid="unknown"), "not available"),
    (lambda: _token({"email": ""}), "no email claim"),
    (lambda: _token({"email_verified": "false"}), "not verified"),
])
def test_tokens_not_from_this_alb_are_refused(token: Callable[[], str | None], why: str) -> None:
    # Made when the test runs (a token made at collection could expire before a long suite reaches it).
    with pytest.raises(NotSignedIn, match=why):
        _verifier(Keys({KID: _pem(KEY)})).identity(token())


def test_only_es256_is_accepted() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": KID, "signer": ARN}).encode()).decode()
    payload = base64.urlsafe_b64encode(json.dumps({"email": "a@b.c", "exp": time.time() + 60}).encode()).decode()
    with pytest.raises(NotSignedIn, match="ES256"):
        _verifier(Keys({KID: _pem(KEY)})).identity(f"{header}.{payload}.")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(NotSignedIn, match="not an EC key"):
        _verifier(Keys({KID: _pem(rsa_key)})).identity(_token())


def test_a_local_link_signs_in_once_and_its_session_expires() -> None:
    now = [1000.0]
    login = LocalLogin("admin@localhost", clock=lambda: now[0])
    token = login.link().split("token=")[1]
    session = login.redeem(token)
    assert login.identity(session).email == "admin@localhost"
    with pytest.raises(NotSignedIn, match="already used"):
        login.redeem(token)
    with pytest.raises(NotSignedIn):
        login.identity("made-up")
    now[0] += LocalLogin.SESSION_SECONDS + 1
    with pytest.raises(NotSignedIn):
        login.identity(session)
