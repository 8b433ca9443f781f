"""The stubs-only distribution: what an internal Python backend installs to call Foothills, without
the server's dependencies. Built as a wheel, installed into a clean virtual environment, and used
against a running server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Running

ROOT = Path(__file__).parents[1]
CALLER = """
import json, sys
import grpc
from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc

found = {}
for module in ("sqlalchemy", "foothills_rpc", "psycopg", "argon2"):
    try:
        __import__(module)
        found[module] = True
    except ImportError:
        found[module] = False
with grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}") as channel:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    user = auth.Register(auth_pb2.RegisterRequest(email="backend@example.com", password="a long enough passphrase",
                                                  display_name="Backend")).user
    listed = catalog_pb2_grpc.CatalogServiceStub(channel).ListCategories(catalog_pb2.ListCategoriesRequest())
    try:
        auth.Login(auth_pb2.LoginRequest(email="backend@example.com", password="wrong password, long"))
        refused = ""
    except grpc.RpcError as error:
        refused = error.code().name
print(json.dumps({"imports": found, "user": user.email, "categories": len(listed.categories), "refused": refused}))
"""


def _run(*command: object) -> None:
    subprocess.run([str(part) for part in command], cwd=ROOT, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def stubs_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only the stubs wheel (and what it depends on) installed."""
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    folder = tmp_path_factory.mktemp("stubs")
    _run(uv, "build", "--package", "foothills-api", "--wheel", "--out-dir", folder / "dist")
    (wheel,) = (folder / "dist").glob("foothills_api-*.whl")
    _run(uv, "venv", "--quiet", "--python", sys.executable, folder / "venv")
    python = folder / "venv" / "bin" / "python"
    _run(uv, "pip", "install", "--quiet", "--python", python, wheel)
    return python


async def test_the_stubs_wheel_alone_calls_a_running_server(running: Running, stubs_python: Path) -> None:
    caller = await asyncio.create_subprocess_exec(str(stubs_python), "-c", CALLER, str(running.port),
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    out, err = await asyncio.wait_for(caller.communicate(), timeout=120)
    assert caller.returncode == 0, err.decode()
    answer = json.loads(out)
    assert answer == {"imports": {"sqlalchemy": False, "foothills_rpc": False, "psycopg": False, "argon2": False},
                      "user": "backend@example.com", "categories": 0, "refused": "UNAUTHENTICATED"}
