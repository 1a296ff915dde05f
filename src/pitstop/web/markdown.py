"""Markdown to safe HTML for the dashboard: knowledge-base entries, lessons learned.

CommonMark with tables (markdown-it-py). What a person sees is the text's headings, lists, tables,
code and links, never markup from the text itself: raw HTML in the Markdown is shown as text (the
parser's `html` option is off), links go only to http(s), mailto or this site (a `javascript:` or
`data:` link stays plain text), and images are not loaded (the dashboard's CSP allows no other
origin; an image becomes a link to it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

# A link's scheme, if it has one: letters, digits, "+", "-" or "." before the first ":".
SCHEME = re.compile(r"^\s*([a-z][a-z0-9+.-]*):", re.IGNORECASE)
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
MAX_CHARS = 200_000  # longer text is cut: a page never hangs on a huge field


def safe_link(url: str) -> bool:
    """Whether a link may be rendered: a relative URL (this site) or one of SAFE_SCHEMES.

    Control characters and whitespace browsers ignore inside a scheme (`java\\tscript:`) are
    removed before the scheme is read, so they cannot smuggle one past this check.
    """
    cleaned = re.sub(r"[\x00-\x20\x7f]+", "", url)
    match = SCHEME.match(cleaned)
    return match is None or match.group(1).lower() in SAFE_SCHEMES


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").disable("image")
    md.validateLink = safe_link  # type: ignore[method-assign]

    def link_open(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        if SCHEME.match(str(token.attrGet("href") or "")):  # another site: no referrer, no opener
            token.attrSet("rel", "noopener noreferrer")
        return str(self.renderToken(tokens, idx, options, env))

    md.add_render_rule("link_open", link_open)
    return md


_MD = _parser()


def render_markdown(text: str | None) -> Markup:
    """`text` (Markdown) as HTML that is safe to put in a page as it is."""
    if not text:
        return Markup("")
    return Markup(_MD.render(text[:MAX_CHARS].replace("\x00", "\ufffd")))
