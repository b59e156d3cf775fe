"""The reference docs agree with the code: options in docs/config.md, error codes and WebSocket
close codes in docs/errors.md, and the codes the server actually raises."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

import enclave
from enclave.api import errors as api_errors
from enclave.config import SECTIONS, load_config
from enclave.domain import errors as domain_errors
from enclave.domain.errors import ERROR_CODES, EnclaveError
from enclave.realtime.frames import CloseCode

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = Path(enclave.__file__).resolve().parent

# A table row whose first cell is a backticked `section.option` or `error_code`, or a bare number.
_OPTION_ROW = re.compile(r"^\| `([a-z_]+)\.([a-z0-9_]+)` \|(.*)\|\s*$")
_CODE_ROW = re.compile(r"^\| `([a-z_]+)` \|(.*)\|\s*$")
_CLOSE_ROW = re.compile(r"^\| (\d{4}) \|(.*)\|\s*$")


def _cells(rest: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", rest)]


def _section(text: str, heading: str) -> str:
    """The body of the `## heading` section of a Markdown document."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {heading}' section"
    return match.group(1)


# -- docs/config.md -------------------------------------------------------------------------------


def documented_options() -> dict[str, list[str]]:
    """`section.option` -> the other cells of its row (type, default, env var, description)."""
    found: dict[str, list[str]] = {}
    for line in (DOCS / "config.md").read_text("utf-8").splitlines():
        match = _OPTION_ROW.match(line)
        if match:
            key = f"{match.group(1)}.{match.group(2)}"
            assert key not in found, f"{key} is documented twice"
            found[key] = _cells(match.group(3))
    return found


def code_options() -> dict[str, Any]:
    return {
        f"{section}.{option}": field.default
        for section, model in SECTIONS.items()
        for option, field in model.model_fields.items()
    }


def test_every_option_is_documented_and_nothing_else() -> None:
    assert set(documented_options()) == set(code_options())


def test_documented_defaults_equal_the_code() -> None:
    documented_rows = documented_options()
    for key, default in code_options().items():
        if key not in documented_rows:
            continue  # reported by test_every_option_is_documented_and_nothing_else
        cell = documented_rows[key][1]
        assert cell.startswith("`") and cell.endswith("`"), f"{key}: default cell {cell!r}"
        documented = tomllib.loads(f"value = {cell.strip('`')}")["value"]
        expected = str(default) if isinstance(default, Path) else default
        assert documented == expected, f"{key}: docs say {documented!r}, code says {expected!r}"
        assert type(documented) is type(expected), f"{key}: {documented!r} vs {expected!r}"


def test_documented_environment_variables_are_read() -> None:
    """Each documented variable follows the naming rule and load_config accepts it (an unknown
    option of a known section would be refused) with the default as its value."""
    for key, cells in documented_options().items():
        section, option = key.split(".")
        env_name = cells[2].strip("`")
        assert env_name == f"ENCLAVE_{section}_{option}".upper(), key
        default = code_options()[key]
        value = str(default).lower() if isinstance(default, bool) else str(default)
        config = load_config(env={env_name: value})
        assert getattr(getattr(config, section), option) == default, key


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_config_docs", ROOT / "scripts/gen_config_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_option_tables_are_up_to_date() -> None:
    """Types, ranges and descriptions too: regenerate with scripts/gen_config_docs.py."""
    gen = _generator()
    text = (DOCS / "config.md").read_text("utf-8")
    assert gen.updated(text) == text, "run .venv/bin/python scripts/gen_config_docs.py"


def test_toml_examples_load(tmp_path: Path) -> None:
    blocks = re.findall(
        r"^```toml\n(.*?)^```", (DOCS / "config.md").read_text("utf-8"), re.M | re.S
    )
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block, "utf-8")
        load_config(path, env={})


# -- docs/errors.md: codes ------------------------------------------------------------------------


def documented_codes() -> dict[str, tuple[str, str]]:
    """code -> (HTTP status cell, meaning) from the table under `## Codes`."""
    found: dict[str, tuple[str, str]] = {}
    for line in _section((DOCS / "errors.md").read_text("utf-8"), "Codes").splitlines():
        match = _CODE_ROW.match(line)
        if match:
            status, meaning = _cells(match.group(2))
            assert match.group(1) not in found, f"{match.group(1)} is documented twice"
            found[match.group(1)] = (status, meaning)
    return found


def test_documented_codes_equal_error_codes() -> None:
    assert set(documented_codes()) == set(ERROR_CODES)


def test_documented_meanings_equal_error_codes() -> None:
    for code, (_status, meaning) in documented_codes().items():
        assert meaning == ERROR_CODES[code], code


WS = "ws"  # a code sent in WebSocket `error` frames rather than with an HTTP status


def _error_classes() -> dict[str, type[EnclaveError]]:
    return {
        name: cls
        for name, cls in vars(domain_errors).items()
        if inspect.isclass(cls) and issubclass(cls, EnclaveError)
    }


def _str_arg(call: ast.Call, index: int, keyword: str) -> str | None:
    node: ast.expr | None = call.args[index] if len(call.args) > index else None
    for kw in call.keywords:
        if kw.arg == keyword:
            node = kw.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _int_arg(call: ast.Call, index: int) -> int | None:
    node = call.args[index] if len(call.args) > index else None
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


def _calls(tree: ast.AST) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name:
                yield name, node


def _is_error_frame(call: ast.Call) -> bool:
    """`frames.error(...)`: an `error` frame (enclave.realtime.frames)."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "error"
        and isinstance(func.value, ast.Name)
        and func.value.id == "frames"
    )


def raised_codes() -> dict[str, set[int | str | None]]:
    """Every error code written as a literal in src/enclave, with the HTTP status it goes out
    with (WS for WebSocket error frames, None where the scan cannot tell).

    Found: `InvalidInput("code", ...)` and the other EnclaveError subclasses taking a code first;
    subclasses with a fixed code (NotFound) wherever they are raised; `error_response(status,
    "code", ...)`; `frames.error("code", ...)` in the WebSocket endpoint; `{"code": "..."}`
    literals; and the codes the REST error handler gives Starlette's own HTTP errors.
    """
    classes = _error_classes()
    takes_code = {
        name
        for name, cls in classes.items()
        if list(inspect.signature(cls.__init__).parameters)[1:2] == ["code"]
    }
    found: dict[str, set[int | str | None]] = {}

    def add(code: str, status: int | str | None) -> None:
        found.setdefault(code, set()).add(status)

    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        in_ws = path.parent.name == "ws"
        for name, call in _calls(tree):
            if name in takes_code:
                code = _str_arg(call, 0, "code")
                assert code is not None, f"{path}:{call.lineno}: {name} without a literal code"
                add(code, api_errors.STATUS_BY_KIND[classes[name].kind])
            elif name in classes:
                # A subclass with a fixed code (NotFound) builds it from defaults.
                instance = cast("Callable[[], EnclaveError]", classes[name])()
                add(instance.code, api_errors.STATUS_BY_KIND[instance.kind])
            elif name == "error_response":
                code = _str_arg(call, 1, "code")
                if code is not None:
                    add(code, _int_arg(call, 0))
            elif name in ("_error", "_error_body") or _is_error_frame(call):
                code = _str_arg(call, 0, "code")
                if code is not None:
                    add(code, WS if in_ws else None)
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        add(value.value, None)
    for status, (code, _message) in api_errors._HTTP_CODES.items():
        add(code, status)
    return found


def test_the_scan_finds_codes() -> None:
    """Guards the scan itself: it must see codes of every origin it knows."""
    found = raised_codes()
    for code in ("weak_password", "not_found", "invalid_json", "bad_frame", "websocket_required"):
        assert code in found, code
    assert found["not_a_member"] == {403}
    assert found["rate_limited"] == {WS, 429}


def test_every_raised_code_is_in_error_codes() -> None:
    missing = set(raised_codes()) - set(ERROR_CODES)
    assert not missing, f"add these to ERROR_CODES and docs/errors.md: {sorted(missing)}"


def test_documented_statuses_match_how_codes_are_raised() -> None:
    documented = documented_codes()
    for code, statuses in raised_codes().items():
        if code not in documented:
            continue  # reported by test_documented_codes_equal_error_codes
        cell = documented[code][0]
        known = {s for s in statuses if isinstance(s, int)}
        if known:
            assert {int(s) for s in re.findall(r"\b\d{3}\b", cell)} == known, (code, cell)
        elif statuses == {WS}:
            assert cell == "—", (code, cell)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 416, 418, 429, 500, 503])
async def test_framework_http_errors_carry_a_listed_code(status: int) -> None:
    """Errors raised by Starlette or FastAPI themselves go through the same envelope."""
    app = FastAPI()
    api_errors.install(app)

    @app.get("/fail")
    async def fail() -> None:
        raise StarletteHTTPException(status)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/fail")
    assert response.status_code == status
    assert response.json()["error"]["code"] in ERROR_CODES


# -- docs/errors.md: WebSocket close codes --------------------------------------------------------


def test_every_close_code_is_documented() -> None:
    section = _section((DOCS / "errors.md").read_text("utf-8"), "WebSocket close codes")
    documented = {}
    for line in section.splitlines():
        match = _CLOSE_ROW.match(line)
        if match:
            documented[int(match.group(1))] = _cells(match.group(2))[0].strip("`")
    in_code = {value: name for name, value in vars(CloseCode).items() if name.isupper()}
    assert documented == in_code
