"""Authentication and permissions: who is asking (htpasswd users, API tokens) and what they may do.

- credentials.py: HTTP Basic parsing, API tokens (generated, stored as a sha256), the verified-password cache;
- htpasswd.py: the htpasswd file (bcrypt entries only) and password verification;
- throttle.py: failed-login limits per client address;
- authenticator.py: the Authenticator (header -> Identity, with its bcrypt threads) and `permits`, the rule.
"""

from proxy.auth.authenticator import (
    BAD_CREDENTIALS,
    READ_NEEDS_AUTH,
    UPLOAD_NEEDS_AUTH,
    UPLOADS_NOT_SET_UP,
    Action,
    Authenticator,
    Identity,
    TokenLookup,
    permits,
)
from proxy.auth.credentials import TOKEN_PREFIX, CredentialCache, generate_token, hash_token, parse_basic_auth
from proxy.auth.htpasswd import TOKEN_USER, Htpasswd
from proxy.auth.throttle import FailureLimiter

__all__ = [
    "BAD_CREDENTIALS",
    "READ_NEEDS_AUTH",
    "TOKEN_PREFIX",
    "TOKEN_USER",
    "UPLOADS_NOT_SET_UP",
    "UPLOAD_NEEDS_AUTH",
    "Action",
    "Authenticator",
    "CredentialCache",
    "FailureLimiter",
    "Htpasswd",
    "Identity",
    "TokenLookup",
    "generate_token",
    "hash_token",
    "parse_basic_auth",
    "permits",
]
