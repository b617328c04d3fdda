"""JWT verification for auth="jwt" routes: real HS256 and RS256 tokens, every reason to refuse."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from squall.errors import ConfigError, Unauthorized
from squall.model.http import JwtConfig
from squall.security.tokens import JwtVerifier

SECRET = "s" * 40
ENV = {"JWT_SECRET": SECRET}
HS = JwtConfig(
    algorithms=("HS256",), issuer="https://issuer", audience="shop", secret_env="JWT_SECRET"
)


def hs_token(secret: str = SECRET, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "ada", "iss": "https://issuer", "aud": "shop", "exp": now + 60}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, "HS256")


def reason_of(verifier: JwtVerifier, token: str) -> tuple[str, str]:
    with pytest.raises(Unauthorized) as info:
        verifier.verify(token)
    assert info.value.status == 401
    return str(info.value.details["reason"]), info.value.message


def test_a_valid_hs256_token_yields_its_claims() -> None:
    claims = JwtVerifier(HS, ENV).verify(hs_token(role="admin"))
    assert claims["sub"] == "ada"
    assert claims["role"] == "admin"


@pytest.mark.parametrize(
    ("make", "reason", "words"),
    [
        (lambda: hs_token(exp=int(time.time()) - 10), "expired", "expired"),
        (lambda: hs_token(nbf=int(time.time()) + 600), "not_yet_valid", "not yet valid"),
        (lambda: hs_token(iss="https://evil"), "issuer", "wrong issuer"),
        (lambda: hs_token(aud="other-app"), "audience", "wrong audience"),
        (lambda: hs_token(secret="x" * 40), "signature", "signature"),
        (lambda: "not.a.jwt", "malformed", "malformed"),
        (lambda: "garbage", "malformed", "malformed"),
        (lambda: hs_token(exp=None), "missing_claim", "'exp'"),
        (lambda: hs_token(iss=None), "missing_claim", "'iss'"),
        (lambda: hs_token(aud=None), "missing_claim", "'aud'"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "issuer",
        "audience",
        "signature",
        "malformed-segments",
        "malformed-text",
        "no-exp",
        "no-iss",
        "no-aud",
    ],
)
def test_each_failure_has_its_own_reason(make: Callable[[], str], reason: str, words: str) -> None:
    # Tokens are made when the test runs: made at collection, "valid" ones could expire.
    got, message = reason_of(JwtVerifier(HS, ENV), make())
    assert got == reason
    assert words in message


def test_tampered_payload_fails_the_signature() -> None:
    header, _, signature = hs_token().split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({"sub": "root", "iss": "https://issuer", "aud": "shop", "exp": 2**40}).encode()
    ).decode()
    assert reason_of(JwtVerifier(HS, ENV), f"{header}.{forged}.{signature}")[0] == "signature"


def test_alg_none_and_unlisted_algorithms_are_refused() -> None:
    unsigned = jwt.encode({"sub": "ada", "exp": int(time.time()) + 60}, None, "none")
    assert reason_of(JwtVerifier(HS, ENV), unsigned)[0] == "algorithm"
    hs512 = jwt.encode({"exp": int(time.time()) + 60}, "s" * 64, "HS512")
    assert reason_of(JwtVerifier(HS, ENV), hs512)[0] == "algorithm"


def test_leeway_accepts_a_token_just_expired() -> None:
    token = hs_token(exp=int(time.time()) - 5)
    lenient = JwtConfig(
        issuer="https://issuer", audience="shop", secret_env="JWT_SECRET", leeway_s=30
    )
    assert JwtVerifier(lenient, ENV).verify(token)["sub"] == "ada"


@pytest.mark.parametrize(
    ("config", "env", "field"),
    [
        (JwtConfig(secret_env="NOPE"), {}, "jwt.secret_env"),
        (JwtConfig(secret_env="JWT_SECRET"), {"JWT_SECRET": "short"}, "jwt.secret_env"),
        (JwtConfig(), {}, "jwt"),
        (JwtConfig(algorithms=("RS256",), jwks_file="/no/such/jwks.json"), {}, "jwt.jwks_file"),
    ],
)
def test_bad_configuration_is_a_config_error(
    config: JwtConfig, env: dict[str, str], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        JwtVerifier(config, env)
    assert info.value.field == field


# RS256 with a JWKS file


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {"k1": rsa_key(), "k2": rsa_key()}


@pytest.fixture
def rs_config(tmp_path: Path, keys: dict[str, rsa.RSAPrivateKey]) -> JwtConfig:
    jwks = []
    for kid, private in keys.items():
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        jwks.append({**public, "kid": kid, "alg": "RS256", "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": jwks}))
    return JwtConfig(
        algorithms=("RS256",), issuer="https://issuer", audience="shop", jwks_file=str(path)
    )


def rs_token(private: rsa.RSAPrivateKey, kid: str | None, **overrides: Any) -> str:
    claims: dict[str, Any] = {"sub": "ada", "iss": "https://issuer", "aud": "shop"}
    claims["exp"] = int(time.time()) + 60
    claims.update(overrides)
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private, "RS256", headers=headers)


def test_rs256_tokens_verify_with_the_key_their_kid_names(
    rs_config: JwtConfig, keys: dict[str, rsa.RSAPrivateKey]
) -> None:
    verifier = JwtVerifier(rs_config, {})
    assert verifier.verify(rs_token(keys["k1"], "k1"))["sub"] == "ada"
    assert verifier.verify(rs_token(keys["k2"], "k2"))["sub"] == "ada"


def test_rs256_failures(rs_config: JwtConfig, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    verifier = JwtVerifier(rs_config, {})
    assert reason_of(verifier, rs_token(keys["k1"], "k2"))[0] == "signature"
    assert reason_of(verifier, rs_token(rsa_key(), "k1"))[0] == "signature"
    assert reason_of(verifier, rs_token(keys["k1"], "k9"))[0] == "unknown_key"
    assert reason_of(verifier, rs_token(keys["k1"], None))[0] == "unknown_key"
    expired = rs_token(keys["k1"], "k1", exp=int(time.time()) - 10)
    assert reason_of(verifier, expired)[0] == "expired"
    assert reason_of(verifier, rs_token(keys["k1"], "k1", aud="x"))[0] == "audience"
    # An HS256 token signed with the public key (the classic confusion attack) is refused.
    assert reason_of(verifier, hs_token())[0] == "algorithm"
