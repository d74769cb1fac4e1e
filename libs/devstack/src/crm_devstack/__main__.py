"""``python -m crm_devstack run [--state-dir .state] [--demo/--no-demo]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crm_devstack.stack import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_devstack", description="Run the CRM on this machine.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="start every process, load demo data, wait for Ctrl-C")
    run_parser.add_argument("--state-dir", type=Path, default=Path(".state"), help="data and logs (default .state)")
    run_parser.add_argument(
        "--demo", action=argparse.BooleanOptionalAction, default=True, help="load demo data (default: yes)"
    )
    args = parser.parse_args(argv)
    return run(args.state_dir, demo=args.demo)


if __name__ == "__main__":
    sys.exit(main())
