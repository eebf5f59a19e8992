"""The lab function on events/lab/*: the page, its content-hashed assets and their headers, and
static guards on the Lab's files (no inline script or style, nothing from another origin, no key
storage outside sessionStorage)."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest

from llm_gateway import lab
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import load_event

STATIC = resources.files("llm_gateway.lab").joinpath("static")


def _get(event_name: str, path: str | None = None) -> dict[str, Any]:
    from functions.lab import handler

    event = load_event(event_name)
    if path is not None:
        event["path"] = path
    result: dict[str, Any] = handler.lambda_handler(event, LambdaContext("lab"))
    result["headers"] = {k.lower(): v for k, v in (result.get("headers") or {}).items()} | {
        k.lower(): ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()
    }
    return result


def _assert_security_headers(headers: dict[str, str]) -> None:
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"


def test_the_page_is_html_never_cached_and_names_its_assets_by_content_hash() -> None:
    result = _get("lab/page")
    assert result["statusCode"] == 200
    assert result["headers"]["content-type"].startswith("text/html")
    assert result["headers"]["cache-control"] == "no-cache"
    _assert_security_headers(result["headers"])
    page = result["body"]
    version = lab.bundle().version
    referenced = set(re.findall(r'(?:src|href)="assets/([0-9a-f]+)/([\w.-]+)"', page))
    assert {name for _, name in referenced} >= {"app.js", "lab.css", "icon.svg"}
    assert {v for v, _ in referenced} == {version}
    assert lab.ASSET_BASE_PLACEHOLDER not in page


def test_every_asset_is_served_for_a_year_with_its_type() -> None:
    for name, asset in lab.bundle().assets.items():
        result = _get("lab/unknown_asset", f"/lab/assets/{lab.bundle().version}/{name}")
        assert result["statusCode"] == 200, name
        assert result["body"] == asset.body
        assert result["headers"]["cache-control"] == "public, max-age=31536000, immutable"
        assert result["headers"]["content-type"] == lab.CONTENT_TYPES["." + name.rsplit(".", 1)[1]]
        _assert_security_headers(result["headers"])


def test_lab_without_slash_redirects_to_the_page_relative_to_the_stage() -> None:
    result = _get("lab/redirect")
    assert result["statusCode"] == 308
    assert result["headers"]["location"] == "lab/"


@pytest.mark.parametrize(
    "path",
    [
        "/lab/assets/0000000000000000/app.js",
        "/lab/assets/{v}/nope.js",
        "/lab/index.html",
        "/lab/assets/{v}/../x",
    ],
)
def test_old_hashes_and_unknown_files_are_404(path: str) -> None:
    result = _get("lab/unknown_asset", path.replace("{v}", lab.bundle().version))
    assert result["statusCode"] == 404
    assert result["headers"]["cache-control"] == "no-store"


def test_any_change_to_any_asset_changes_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    before = lab.bundle()
    lab.bundle.cache_clear()
    try:
        original = resources.files("llm_gateway.lab").joinpath("static")

        class Edited:
            """The static folder with one byte more in one module."""

            def iterdir(self) -> Any:
                for entry in original.iterdir():
                    yield _EditedEntry(entry) if entry.name == "dom.js" else entry

        monkeypatch.setattr(lab.resources, "files", lambda _name: _Folder(Edited()))
        assert lab.bundle().version != before.version
    finally:
        lab.bundle.cache_clear()


class _Folder:
    def __init__(self, static: Any) -> None:
        self._static = static

    def joinpath(self, _name: str) -> Any:
        return self._static


class _EditedEntry:
    def __init__(self, entry: Any) -> None:
        self.name = entry.name
        self._entry = entry

    def is_file(self) -> bool:
        return True

    def read_text(self, encoding: str) -> str:
        return str(self._entry.read_text(encoding)) + " "


def _static_files() -> dict[str, str]:
    return {e.name: e.read_text("utf-8") for e in STATIC.iterdir() if e.is_file()}


def test_no_inline_script_or_style_anywhere() -> None:
    """CSP forbids them; this catches a regression before a browser does."""
    page = _static_files()["index.html"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline <script>"
    assert "<style" not in page
    for name, text in _static_files().items():
        assert not re.search(r"\sstyle=|\bon[a-z]+=\"", text), name
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, name
        assert "eval(" not in text and "new Function" not in text, name


def test_nothing_is_loaded_from_another_origin_and_keys_stay_in_session_storage() -> None:
    for name, text in _static_files().items():
        assert not re.search(
            r"""(?:import\s[^;]*from\s*|import\(\s*|src=|href=|url\()\s*["']?(?:https?:)?//""", text
        ), name
        assert not re.search(r"\blocalStorage\s*[.[]|document\.cookie\s*=", text), name
    assert "sessionStorage" in _static_files()["api.js"]
