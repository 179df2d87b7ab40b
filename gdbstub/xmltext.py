"""XML text escaping for the documents the stub serves (qXfer, lldb's target.xml).

xml.sax.saxutils does the same, but importing it pulls in urllib, http, email and ssl,
which cost more than the stub's whole start-up.
"""

from __future__ import annotations


def xml_escape(text: str, quote: bool = False) -> str:
    """``&``, ``<``, ``>`` (and ``"`` with QUOTE) as entities, as xml.sax.saxutils.escape:
    that module pulls in urllib, http and email, which cost more than the stub's start."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


def xml_attr(text: str) -> str:
    """TEXT as a quoted attribute value, exactly as xml.sax.saxutils.quoteattr gives it."""
    text = xml_escape(text).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"{}"'.format(text.replace('"', "&quot;"))
