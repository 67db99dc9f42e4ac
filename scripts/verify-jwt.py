#!/usr/bin/env python3
"""Verifies an access token with PyJWT (an implementation independent of ours) against the JWK set
the user service publishes.

    verify-jwt.py JWKS_URL TOKEN ISSUER AUDIENCE

Prints the verified claims as JSON and exits 0; exits 1 when the token does not verify.
"""
import json
import sys

import jwt


def main() -> int:
    jwks_url, token, issuer, audience = sys.argv[1:5]
    client = jwt.PyJWKClient(jwks_url)
    try:
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["EdDSA"],
            issuer=issuer,
            audience=audience,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as error:
        print(f"token does not verify: {error}", file=sys.stderr)
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
