"""The deployment helpers in deploy/ without running nginx: rendering the site configuration and
the active health checker's edits of it. tests/e2e/test_cluster.py runs both for real."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load(DEPLOY / "nginx" / "render.py")
health = _load(DEPLOY / "nginx" / "enclave-health.py")

NODES = ["10.0.1.21:8080", "10.0.1.22:8080", "[fd00::23]:8081"]


def _rendered(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(DEPLOY / "nginx" / "render.py")]
    for node in NODES:
        args += ["--node", node]
    args += ["--cert", "/etc/ssl/e/full.pem", "--key", "/etc/ssl/e/key.pem", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


def test_render_fills_every_placeholder_and_lists_each_node_once(tmp_path: Path) -> None:
    done = _rendered(tmp_path, "--server-name", "chat.example.com")
    assert done.returncode == 0, done.stderr
    conf = done.stdout
    assert "@@" not in conf
    assert health.nodes_in(conf) == dict.fromkeys(NODES, False)
    assert "server_name chat.example.com;" in conf
    assert "ssl_certificate /etc/ssl/e/full.pem;" in conf
    assert "listen 443 ssl;" in conf and "listen 80;" in conf
    assert conf.count("max_fails=2 fail_timeout=10s;") == len(NODES)


@pytest.mark.parametrize(
    "bad",
    [
        ["--node", "10.0.1.21"],  # no port
        ["--node", "10.0.1.21:99999"],
        ["--node", "bad host:80"],
        ["--server-name", "a;b"],  # would end the directive and start another
        ["--cert", "x{y"],
    ],
)
def test_render_refuses_values_that_are_not_one_nginx_word(tmp_path: Path, bad: list[str]) -> None:
    done = _rendered(tmp_path, *bad)
    assert done.returncode == 2, done.stdout
    assert "error" in done.stderr


def test_health_marks_exactly_the_given_nodes_down_and_back_up() -> None:
    conf = render.render(
        render.TEMPLATE.read_text("utf-8"),
        NODES,
        {
            "CERT": "c",
            "KEY": "k",
            "SERVER_NAME": "_",
            "LISTEN": "443",
            "HTTP_LISTEN": "80",
            "ACCESS_LOG": "a.log",
        },
    )
    down = health.with_down(conf, {NODES[1]})
    assert health.nodes_in(down) == {NODES[0]: False, NODES[1]: True, NODES[2]: False}
    assert f"server {NODES[1]} max_fails=2 fail_timeout=10s down;" in down
    assert health.with_down(down, {NODES[1]}) == down  # idempotent
    assert health.with_down(down, set()) == conf  # and reversible, byte for byte


def test_health_never_takes_every_node_out() -> None:
    all_failing = dict.fromkeys(NODES, False)
    assert health.decide(all_failing, set()) == set()
    assert health.decide(all_failing, {NODES[0]}) == {NODES[0]}  # what was down stays down
    assert health.decide({**all_failing, NODES[2]: True}, set()) == {NODES[0], NODES[1]}
