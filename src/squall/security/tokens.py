"""JWT verification for routes with ``auth="jwt"``, configured by the app's ``JwtConfig``.

HS256 secrets come from an environment variable of the platform process (``secret_env``);
RS256 public keys from a JWKS file (``jwks_file``). ``exp`` is required; ``iss`` and ``aud``
are required and checked when configured; ``nbf`` is checked when present. Every rejection
is an ``Unauthorized`` whose ``reason`` says which check failed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from squall.errors import ConfigError, Unauthorized
from squall.model.http import JwtConfig

# RFC 7518 3.2: an HMAC key at least as long as the hash's output.
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


def rejected(reason: str, message: str) -> Unauthorized:
    return Unauthorized(message, field="authorization", reason=reason)


class JwtVerifier:
    def __init__(self, config: JwtConfig, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.config = config
        self.algorithms = tuple(config.algorithms)
        self._secret: bytes | None = None
        self._jwks: jwt.PyJWKSet | None = None
        if config.secret_env is not None:
            secret = env.get(config.secret_env)
            if not secret:
                raise ConfigError(
                    f"settings.jwt.secret_env names {config.secret_env!r}, which is not set"
                    " in the platform's environment",
                    field="jwt.secret_env",
                )
            needed = max((HMAC_KEY_BYTES.get(alg, 32) for alg in self.algorithms), default=32)
            if len(secret.encode()) < needed:
                raise ConfigError(
                    f"the JWT secret in {config.secret_env} is {len(secret.encode())} bytes;"
                    f" HMAC signing with {', '.join(self.algorithms)} needs at least {needed}",
                    field="jwt.secret_env",
                )
            self._secret = secret.encode()
        if config.jwks_file is not None:
            self._jwks = _load_jwks(Path(config.jwks_file))
        if self._secret is None and self._jwks is None:
            raise ConfigError(
                "settings.jwt needs secret_env (HS256) or jwks_file (RS256) to verify tokens",
                field="jwt",
            )

    def verify(self, token: str) -> dict[str, object]:
        """The token's verified claims; raises ``Unauthorized`` naming what failed."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise rejected("malformed", f"JWT is malformed: {exc}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise rejected(
                "algorithm",
                f"JWT algorithm {alg!r} is not allowed (allowed: {', '.join(self.algorithms)})",
            )
        key = self._key(str(alg), header.get("kid"))
        required = ["exp"]
        if self.config.issuer is not None:
            required.append("iss")
        if self.config.audience is not None:
            required.append("aud")
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                issuer=self.config.issuer,
                audience=self.config.audience,
                leeway=self.config.leeway_s,
                options={"require": required, "verify_aud": self.config.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise rejected("expired", "JWT has expired (exp is in the past)") from None
        except jwt.ImmatureSignatureError:
            raise rejected("not_yet_valid", "JWT is not yet valid (nbf is in the future)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise rejected("missing_claim", f"JWT lacks the required {exc.claim!r} claim") from None
        except jwt.InvalidIssuerError:
            raise rejected(
                "issuer", f"JWT has the wrong issuer (expected {self.config.issuer!r})"
            ) from None
        except jwt.InvalidAudienceError:
            raise rejected(
                "audience", f"JWT has the wrong audience (expected {self.config.audience!r})"
            ) from None
        except jwt.InvalidSignatureError:
            raise rejected("signature", "JWT signature does not verify") from None
        except jwt.DecodeError as exc:
            raise rejected("malformed", f"JWT is malformed: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise rejected("invalid", f"JWT is invalid: {exc}") from None
        return claims

    def _key(self, alg: str, kid: object) -> Any:
        if alg in HMAC_KEY_BYTES:
            if self._secret is None:
                raise rejected("algorithm", f"JWT algorithm {alg} has no key configured")
            return self._secret
        if self._jwks is None:
            raise rejected("algorithm", f"JWT algorithm {alg} has no key configured")
        keys = list(self._jwks.keys)
        if kid is None:
            if len(keys) == 1:
                return keys[0]
            raise rejected("unknown_key", "JWT has no 'kid' header and the JWKS holds several keys")
        for candidate in keys:
            if candidate.key_id == kid:
                return candidate
        raise rejected("unknown_key", f"JWT key id {kid!r} is not in the JWKS")


def _load_jwks(path: Path) -> jwt.PyJWKSet:
    try:
        return jwt.PyJWKSet.from_json(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"cannot read settings.jwt.jwks_file {str(path)!r}: {exc.strerror}",
            field="jwt.jwks_file",
        ) from None
    except (ValueError, jwt.PyJWTError) as exc:
        raise ConfigError(
            f"settings.jwt.jwks_file {str(path)!r} is not a usable JWKS: {exc}",
            field="jwt.jwks_file",
        ) from None
