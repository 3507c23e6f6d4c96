"""Password hashing with Argon2id (argon2-cffi) and the minimal password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.errors import ValidationError
from engine.messages import M

MIN_LENGTH = 8
MAX_LENGTH = 1024  # hashing megabytes of "password" is a cheap denial of service

_hasher = PasswordHasher()  # argon2-cffi's defaults: the RFC 9106 low-memory profile


def check_password_rules(password: str) -> None:
    """Refuse passwords too short or too long, naming the ``password`` field."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise ValidationError("user", {"password": M("at least %(min_length)s characters",
                                                     min_length=MIN_LENGTH)})
    if len(password) > MAX_LENGTH:
        raise ValidationError("user", {"password": M("at most %(max_length)s characters",
                                                     max_length=MAX_LENGTH)})
    if password.strip() == "":
        raise ValidationError("user", {"password": M("must not be only spaces")})


def hash_password(password: str) -> str:
    """An encoded Argon2id hash (salt and parameters included) of a valid password."""
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    """Whether ``password`` matches ``encoded``; a missing or corrupt hash never matches.

    With no hash we still spend one verification, so that "no such user" and
    "wrong password" take the same time.
    """
    try:
        return _hasher.verify(encoded or _DUMMY_HASH, password) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """True when the hash was made with older parameters than the current ones."""
    return _hasher.check_needs_rehash(encoded)


_DUMMY_HASH = _hasher.hash("not a password of anyone")
