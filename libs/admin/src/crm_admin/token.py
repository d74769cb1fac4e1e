"""`crm-admin token`: a bearer token from the development issuer, for `make run` only.

Prints only the token, so `TOKEN=$(make token ROLE=sales_rep)` works. The key is the one the
running development gateway trusts (`.state/dev-issuer/signing-key.pem`); production gateways
refuse this issuer, so these tokens open nothing there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from crm_kit.dev_issuer import DEMO_USERS, DevIssuer

DEFAULT_KEY_FILE = Path(".state") / "dev-issuer" / "signing-key.pem"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("token", help="mint a development bearer token for a demo user")
    parser.add_argument("--role", default="admin", choices=sorted(DEMO_USERS), help="the user's role")
    parser.add_argument("--user", default="", help="subject (default: the role's demo user, e.g. rep-dana)")
    parser.add_argument("--team", default="", help="team id of a manager or rep (default: the demo user's)")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    parser.add_argument(
        "--key-file",
        type=Path,
        default=Path(os.environ.get("CRM_AUTH_DEV_ISSUER_KEY_FILE", "") or DEFAULT_KEY_FILE),
        help="the development issuer's key (default: .state/dev-issuer/signing-key.pem)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    key_file: Path = args.key_file
    if not key_file.exists():
        print(f"no development issuer key at {key_file}: start the system with `make run` first", file=sys.stderr)
        return 1
    if not 0 < args.ttl <= 86_400:
        print("--ttl must be between 1 and 86400 seconds", file=sys.stderr)
        return 2
    issuer = DevIssuer.load_or_create(key_file)
    print(issuer.mint_demo(args.role, subject=args.user, team_id=args.team, ttl_seconds=args.ttl))
    return 0
