"""Operator passwords: Argon2id hashes that verify, refuse the wrong password, ask for a rehash, and a policy."""

import argon2
import pytest

from parkcard.security import passwords
from parkcard.security.passwords import PasswordPolicyError

GOOD = "correct horse battery"


def test_a_hash_verifies_its_password_only():
    stored = passwords.hash_password(GOOD)
    assert stored.startswith("$argon2id$")
    assert GOOD not in stored
    assert passwords.verify_password(stored, GOOD)
    assert not passwords.verify_password(stored, GOOD + "!")
    assert not passwords.verify_password(stored, "")


def test_two_hashes_of_one_password_differ_by_their_salt():
    assert passwords.hash_password(GOOD) != passwords.hash_password(GOOD)


def test_a_stored_value_that_is_not_an_argon2_hash_never_verifies():
    assert not passwords.verify_password("plain text", "plain text")
    assert not passwords.verify_password("", GOOD)


def test_a_hash_made_with_weaker_parameters_needs_a_rehash_and_still_verifies():
    old = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(GOOD)
    assert passwords.verify_password(old, GOOD)
    assert passwords.needs_rehash(old)
    assert not passwords.needs_rehash(passwords.hash_password(GOOD))


@pytest.mark.parametrize("password, login, message", [
    ("short", None, "has 5 characters: use at least 10"),
    ("x" * 1025, None, "use at most 1024"),
    ("a" * 12, None, "one character repeated"),
    (" " * 12, None, "one character repeated"),
    ("Cashier-Anna", "cashier-anna", "is the login name"),
    (b"bytes-password", None, "a password is text"),
])
def test_the_policy_refuses_a_weak_password_and_says_what_a_good_one_needs(password, login, message):
    with pytest.raises(PasswordPolicyError, match=message):
        passwords.hash_password(password, login)


def test_the_policy_takes_a_long_enough_password_in_any_script():
    passwords.check_policy("金卡充值赠送百分之十", "anna")
    passwords.check_policy("ab" * 512)
