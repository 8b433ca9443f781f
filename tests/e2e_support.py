"""What the subprocess tests share: the grpcurl binary, a `foothills-rpc serve` environment, and the
bounds on a subprocess's start, calls and stop."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# Bounds on hangs, not expectations: readiness is polled and ends as soon as the server answers, and a
# machine loaded eight deep on two cores once needed more than 20 s to start a server.
START_TIMEOUT = 90.0
CALL_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


def _find_grpcurl() -> str | None:
    beside = Path(sys.executable).parent / "grpcurl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("grpcurl")


GRPCURL = _find_grpcurl()


def server_env(folder: Path) -> dict[str, str]:
    # Nothing FOOTHILLS_* from the caller's shell: above all no JWT secret, and the default log level.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHILLS_")}
    env.update(
        FOOTHILLS_DATABASE_URL=f"sqlite:///{folder / 'e2e.db'}",
        FOOTHILLS_ARGON2_MEMORY_KIB="64",
        FOOTHILLS_ARGON2_TIME_COST="1",
        FOOTHILLS_OUTBOX_DIR=str(folder / "outbox"),
    )
    return env
