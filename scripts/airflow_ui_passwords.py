"""Passwords of the Airflow UI's accounts, written owner-only (0600) where SimpleAuthManager reads them.

    python scripts/airflow_ui_passwords.py FILE [--users admin:admin,engineer:user,compliance:viewer]

SimpleAuthManager (the auth manager Airflow 3 ships) reads each account's password from a JSON file
({"name": "password", ...}) and generates one for every configured account missing from it, but it
creates that file with the process's umask (0644 under the usual 022: readable by every local user)
and prints the passwords it generates to its log. This writes the file first: a random password per
account (`secrets.token_urlsafe`), the file created owner-only and replaced whole. Passwords already in
the file are kept, so a second run adds only new accounts and tightens the mode. The accounts default to
AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS (name:role,...), as the Makefile exports it. No password is
printed. README "Airflow accounts and roles" says who gets which account; secrets/README.md has the
docker compose file.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from pathlib import Path

USERS_VARIABLE = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
MODE = 0o600
ROLES = ("viewer", "user", "op", "admin")   # SimpleAuthManager's roles, least to most


def parse_users(spec: str) -> list[tuple[str, str]]:
    """(name, role) of each account in SimpleAuthManager's `name:role,...` setting."""
    users = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, role = item.partition(":")
        role = role.split(":")[0]   # name:role:teams in multi-team mode
        if not name or role.lower() not in ROLES:
            raise ValueError(f"expected name:role with a role of {', '.join(ROLES)}, got {item!r}")
        users.append((name, role))
    if not users:
        raise ValueError("no accounts given")
    return users


def write_passwords(path: Path, names: list[str]) -> list[str]:
    """Give every name without a password one, rewrite `path` owner-only; return the names added."""
    path = Path(path)
    passwords: dict[str, str] = {}
    if path.exists():
        passwords = json.loads(path.read_text().strip() or "{}")
        if not isinstance(passwords, dict):
            raise ValueError(f"{path} does not hold a JSON object of name: password")
    added = [name for name in names if name not in passwords]
    for name in added:
        passwords[name] = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")   # created 0600 whatever the umask
    try:
        os.fchmod(fd, MODE)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(passwords) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the Airflow UI accounts' passwords owner-only (0600); keeps passwords already there.")
    parser.add_argument("file", type=Path, help="the passwords file (SimpleAuthManager's passwords file)")
    parser.add_argument("--users", default=os.environ.get(USERS_VARIABLE, ""),
                        help=f"accounts as name:role,... (default: ${USERS_VARIABLE})")
    args = parser.parse_args(argv)
    try:
        users = parse_users(args.users)
        added = write_passwords(args.file, [name for name, _ in users])
    except (ValueError, OSError) as exc:
        print(f"airflow_ui_passwords: {exc}", file=sys.stderr)
        return 1
    accounts = ", ".join(f"{name} ({role})" for name, role in users)
    print(f"Airflow UI accounts {accounts}: passwords in {args.file} (owner-only, 0600; "
          f"{len(added)} new)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
