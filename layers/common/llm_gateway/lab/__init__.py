"""The Lab's static files (``lab/static``), as the lab function serves them.

No build step: the files are plain JavaScript modules and CSS. Their URLs carry one content hash
of the whole set (``assets/<hash>/app.js``), so relative imports between modules keep working,
every asset can be cached for a year, and any change to any file gives every asset a new URL.
The page itself is ``no-cache``: a browser revalidates it and so always learns the current hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

PAGE = "index.html"
ASSET_BASE_PLACEHOLDER = "%ASSET_BASE%"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE_CACHE_CONTROL = "no-cache"
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: Only this origin, no inline script or style, never framed (clickjacking), no plugins.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str


@dataclass(frozen=True)
class LabBundle:
    version: str
    page: str
    assets: dict[str, Asset]

    def asset(self, version: str, name: str) -> Asset | None:
        """An asset of the current set; an old hash is not served (its content is gone)."""
        return self.assets.get(name) if version == self.version else None


def _content_type(name: str) -> str | None:
    return next((t for ext, t in CONTENT_TYPES.items() if name.endswith(ext)), None)


@lru_cache(maxsize=1)
def bundle() -> LabBundle:
    """Read once per container: the files never change while a function version runs."""
    folder = resources.files(__name__).joinpath("static")
    files = {
        entry.name: entry.read_text("utf-8")
        for entry in folder.iterdir()
        if entry.is_file() and _content_type(entry.name)
    }
    page = files.pop(PAGE)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    version = digest.hexdigest()[:16]
    return LabBundle(
        version=version,
        page=page.replace(ASSET_BASE_PLACEHOLDER, f"assets/{version}/"),
        assets={name: Asset(body, _content_type(name) or "") for name, body in files.items()},
    )
