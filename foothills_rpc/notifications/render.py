"""Renders a notice from its template (templates/<kind>.j2) as a subject, a text part and an HTML part.

One template per kind fills four blocks (subject, intro, facts, outro); two layouts lay them out, as
plain text and as autoescaped HTML, so both parts always say the same thing. `fact(label, value)`
writes one line of the facts table in either part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _environment(*, html: bool) -> Environment:
    # The text part is plain text, never shown as markup: escaping it would print "&amp;" to readers.
    # The templates ship inside the package, so a loaded one is never stale: without auto_reload, Jinja
    # stops stat-ing its file on every render (a tenth of send-mail's CPU under booking load).
    return Environment(loader=PackageLoader("foothills_rpc.notifications", "templates"),
                       autoescape=html,  # noqa: S701  # nosec B701
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                       auto_reload=False)


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


def _text_fact(label: str, value: object) -> str:
    return f"{label}: {value}"


def _html_fact(label: str, value: object) -> Markup:
    # join escapes label and value as Markup.format would, without string.Formatter's Python loop.
    return Markup().join((Markup('<tr><th scope="row">'), label, Markup('</th><td style="white-space: pre-wrap;">'),
                          escape(value), Markup("</td></tr>")))


def kinds() -> list[str]:
    """Every notice kind there is a template for."""
    return sorted(name.removesuffix(".j2") for name in _TEXT.list_templates(extensions=["j2"])
                  if not name.startswith("_"))


def render(kind: str, context: dict[str, Any]) -> Rendered:
    text_template = _TEXT.get_template(f"{kind}.j2")
    subject_context = text_template.new_context({**context, "layout": "_layout.txt", "fact": _text_fact})
    subject = " ".join("".join(text_template.blocks["subject"](subject_context)).split())
    text = text_template.render(context, layout="_layout.txt", fact=_text_fact)
    html = _HTML.get_template(f"{kind}.j2").render(context, layout="_layout.html", fact=_html_fact,
                                                    subject=subject)
    return Rendered(subject=subject, text=text, html=html)
