"""Operator passwords: Argon2id hashes (argon2-cffi), a minimum policy, verification and rehash on login.

The hash string carries its own parameters and salt (PHC format), so a
store keeps one text column per operator. The parameters are argon2-cffi's
defaults (RFC 9106's low-memory profile); when they change, needs_rehash
tells the login to store a fresh hash of the password just verified.
"""

import argon2

PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 1024       # a longer "password" is a paste gone wrong, and hashing it costs for nothing

_HASHER = argon2.PasswordHasher()


class PasswordPolicyError(ValueError):
    """A new password the policy refuses; the message says what a good one needs."""


def check_policy(password, login=None):
    """Raise PasswordPolicyError when password is too short, too long, one repeated character or the login."""
    if not isinstance(password, str):
        raise PasswordPolicyError("a password is text")
    if len(password) < PASSWORD_MIN_CHARS:
        raise PasswordPolicyError("the password has %d characters: use at least %d (a few words make a good one)"
                                  % (len(password), PASSWORD_MIN_CHARS))
    if len(password) > PASSWORD_MAX_CHARS:
        raise PasswordPolicyError("the password has %d characters: use at most %d"
                                  % (len(password), PASSWORD_MAX_CHARS))
    if len(set(password)) == 1 or not password.strip():
        raise PasswordPolicyError("the password is one character repeated: choose one that is hard to guess")
    if login is not None and password.strip().lower() == str(login).strip().lower():
        raise PasswordPolicyError("the password is the login name: choose one that is hard to guess")


def hash_password(password, login=None):
    """The Argon2id hash to store for a new password that passes the policy."""
    check_policy(password, login)
    return _HASHER.hash(password)


def verify_password(stored_hash, password):
    """True when password matches stored_hash; False for a wrong password or a hash that is not Argon2."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(stored_hash):
    """True when stored_hash was made with other parameters than today's (store a fresh one after login)."""
    return _HASHER.check_needs_rehash(stored_hash)
