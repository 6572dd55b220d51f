"""Operator sessions, CSRF tokens and login rate limits, held by the hub process (one process owns the hub).

A session is a random token in a cookie (HttpOnly, SameSite=Strict, Secure
under TLS) naming the operator's Actor; a new token is made at every login and
dropped at logout, so a token planted before a login is never the session
after it. A session ends when it has not been used for the park's idle limit,
and at its absolute limit after the login however busy it is (park settings:
`parkcard park sessions`, parkcard.store.rows.SessionLimits). Sessions are kept
in the store too (the token's SHA-256, never the token, with an expiry at the
absolute limit): a hub restart logs no one out (the idle time counts again from
the restart), a logout or a disabled account ends the kept session as well, and
a session found only in the store is given its account's roles as they are now.

Every form carries a CSRF token: the session's own after login, and before it
the value of a cookie the login page set (double submit). The login is limited
per user name and per client address: too many failures within
LOGIN_WINDOW_S refuse further tries, right password or not, until the window
has passed.
"""

import collections
import hashlib
import hmac
import secrets
import time

SESSION_COOKIE = "parkcard_session"
LOGIN_CSRF_COOKIE = "parkcard_login"
SESSION_IDLE_S = 8 * 3600               # a shift (the defaults of SessionLimits)
SESSION_MAX_S = 8 * 3600
SESSIONS_MAX = 10_000                   # the oldest session goes when a new one would exceed it (counted)
LOGIN_WINDOW_S = 300
LOGIN_FAILURES_PER_USER_MAX = 5
LOGIN_FAILURES_PER_ADDRESS_MAX = 20
LIMITED_KEYS_MAX = 10_000               # user names and addresses remembered; the oldest goes first (counted)
TOKEN_BYTES = 32
# Forms that move money carry a token of their own, answered once: a session remembers this many answers
# (the oldest goes first), more than a person sends again by reloading or going back.
FORM_ANSWERS_MAX = 64
IN_FLIGHT = ("pending", None)           # the answer of a form still being done


def new_token():
    """A random token for a cookie or a form (256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token):
    """What the store keeps of a session token: its SHA-256."""
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def same_token(given, expected):
    """True when a token from a request equals the expected one (constant time; an empty one never does)."""
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


class Session:
    """One operator's login: the Actor, its CSRF token, its language and a message for the next page."""

    __slots__ = ("token", "actor", "csrf", "locale", "started_s", "seen_s", "flash", "answers")

    def __init__(self, token, actor, locale, now_s):
        self.token = token
        self.actor = actor
        self.csrf = new_token()
        self.locale = locale
        self.started_s = now_s  # the login (the absolute limit counts from it)
        self.seen_s = now_s
        self.flash = None       # (kind, text) shown once by the next page
        self.answers = collections.OrderedDict()    # {form token: (kind, text)} of the forms done once

    def claim(self, form_token):
        """None when form_token is new (it is then in flight), else its first answer (or IN_FLIGHT)."""
        if form_token in self.answers:
            return self.answers[form_token]
        while len(self.answers) >= FORM_ANSWERS_MAX:
            self.answers.popitem(last=False)
        self.answers[form_token] = IN_FLIGHT
        return None

    def answer(self, form_token, kind, text):
        """Keep the answer of a claimed form: the same form sent again gets it, and nothing is done again."""
        self.answers[form_token] = (kind, text)


class Sessions:
    """The hub's open sessions, by token."""

    def __init__(self, clock=time.monotonic, idle_s=SESSION_IDLE_S, sessions_max=SESSIONS_MAX, max_s=SESSION_MAX_S):
        self.clock = clock
        self.idle_s = idle_s
        self.max_s = max_s
        self.sessions_max = sessions_max
        self._by_token = collections.OrderedDict()
        self.evicted = 0

    def start(self, actor, locale):
        """A new session for actor, with a token never used before."""
        return self._held(Session(new_token(), actor, locale, self.clock()))

    def set_limits(self, limits):
        """Take the park's SessionLimits (its setting may change while the hub runs): every session follows them."""
        self.idle_s, self.max_s = limits.idle_s, limits.max_s

    def get(self, token):
        """The live session of token, or None (unknown, ended, idle too long or past its absolute limit)."""
        session = self._by_token.get(token or "")
        if session is None:
            return None
        now = self.clock()
        if now - session.seen_s > self.idle_s or now - session.started_s > self.max_s:
            del self._by_token[session.token]
            return None
        session.seen_s = now
        self._by_token.move_to_end(session.token)
        return session

    def _held(self, session):
        while len(self._by_token) >= self.sessions_max:
            self._by_token.popitem(last=False)
            self.evicted += 1
        self._by_token[session.token] = session
        return session

    async def keep(self, store, session, wall_clock=time.time):
        """Keep a session just started in the store: it outlives a hub restart until it expires."""
        await store.end_web_sessions(expired_before=wall_clock())      # what expired goes as new ones come
        await store.keep_web_session(token_digest(session.token), session.actor.name, session.csrf, session.locale,
                                     wall_clock() + self.max_s)

    async def find(self, store, token, actor_of, wall_clock=time.time):
        """The live session of token, from memory or else from the store (its actor made anew by
        `await actor_of(username)`, None for an account that may no longer log in); None when there is none."""
        session = self.get(token)
        if session is not None or not token:
            return session
        kept = await store.web_session(token_digest(token), wall_clock())
        if kept is None:
            return None
        # The absolute limit counts from the login (kept on the wall clock), and may have been shortened since.
        age_s = max(0.0, wall_clock() - kept.created_at)
        actor = await actor_of(kept.username) if age_s <= self.max_s else None
        if actor is None:
            await store.end_web_sessions(token_sha256=kept.token_sha256)
            return None
        now = self.clock()
        session = Session(token, actor, kept.locale, now)
        session.csrf = kept.csrf        # the forms of pages shown before the restart still go through
        session.started_s = now - age_s
        return self._held(session)

    async def revoke(self, store, token):
        """Log a session out, in memory and in the store."""
        self.end(token)
        if token:
            await store.end_web_sessions(token_sha256=token_digest(token))

    async def revoke_operator(self, store, username):
        """Log out every session of an operator (disabled, or its roles changed), kept ones too."""
        self.end_operator(username)
        await store.end_web_sessions(username=username)

    def end(self, token):
        """Log a session out (nothing when it is unknown)."""
        self._by_token.pop(token or "", None)

    def end_operator(self, username):
        """Log out every session of an operator (disabled, or its roles changed)."""
        for token in [t for t, s in self._by_token.items() if s.actor.name == username]:
            del self._by_token[token]


class LoginLimiter:
    """Failed logins per user name and per address within LOGIN_WINDOW_S; refuses past the limits."""

    def __init__(self, clock=time.monotonic, window_s=LOGIN_WINDOW_S, per_user_max=LOGIN_FAILURES_PER_USER_MAX,
                 per_address_max=LOGIN_FAILURES_PER_ADDRESS_MAX, keys_max=LIMITED_KEYS_MAX):
        self.clock = clock
        self.window_s = window_s
        self.limits = {"user": per_user_max, "address": per_address_max}
        self.keys_max = keys_max
        self._failures = collections.OrderedDict()     # (kind, value) -> deque of failure times
        self.forgotten = 0
        self.refusals = 0

    def _recent(self, key, now):
        times = self._failures.get(key)
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times or ()

    def wait_s(self, username, address):
        """Seconds until a login of username from address may be tried again; 0 when it may now."""
        now = self.clock()
        wait = 0
        for key in (("user", username), ("address", address)):
            times = self._recent(key, now)
            if len(times) >= self.limits[key[0]]:
                wait = max(wait, int(times[0] + self.window_s - now) + 1)
        if wait:
            self.refusals += 1
        return wait

    def failed(self, username, address):
        """Count a failed login against the user name and the address."""
        now = self.clock()
        for key in (("user", username), ("address", address)):
            times = self._failures.get(key)
            if times is None:
                while len(self._failures) >= self.keys_max:
                    self._failures.popitem(last=False)
                    self.forgotten += 1
                times = self._failures[key] = collections.deque(maxlen=max(self.limits.values()))
            times.append(now)
            self._failures.move_to_end(key)

    def succeeded(self, username):
        """A good login clears its user name's failures (the address's stay)."""
        self._failures.pop(("user", username), None)
