"""Generated secrets for the accounts the wizard creates.

The ASA's password is never typed or shown: Exchange's roll script replaces it soon after, and every
server receives it from the script, not from a person. It must still satisfy the domain's complexity
policy at the moment the account is created, so it is long (default 64 characters, far above any
minimum length) and always contains all four character classes AD counts. `secrets` (the operating
system's cryptographic RNG) picks every character.
"""

from __future__ import annotations

import secrets
import string

from .secrets import Secret

# Characters AD counts as "special"; quotes and backslashes are left out so the value survives every
# quoting layer (LDAP unicodePwd wraps it in double quotes, PowerShell in single quotes).
SPECIALS = "!#$%&()*+,-./:;<=>?@[]^_{|}~"
CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, SPECIALS)
MIN_LENGTH = 16


def generate_password(length: int = 64) -> Secret:
    """A random password with at least one character of each class AD's complexity rule counts."""
    if length < MIN_LENGTH:
        raise ValueError(f"a generated password is at least {MIN_LENGTH} characters long")
    alphabet = "".join(CLASSES)
    chars = [secrets.choice(cls) for cls in CLASSES]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    # Shuffle with the cryptographic RNG so the guaranteed characters are not always in front.
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return Secret("".join(chars))


def meets_complexity(password: str, account_names: tuple[str, ...] = ()) -> bool:
    """AD's 'Password must meet complexity requirements': three of the four classes, and no account
    name of three or more characters inside it (case-insensitive)."""
    classes = sum(any(c in cls for c in password) for cls in CLASSES)
    if classes < 3:
        return False
    lower = password.lower()
    return not any(len(n) >= 3 and n.lower() in lower for n in account_names)
