"""The link to the current view: an anchor, a copy button (the browser's clipboard) and the query it holds; and the
query of the link that opened the page."""

from __future__ import annotations

import html
import json
import os

# The button copies the page's address with this view's query; without the Clipboard API (a page served over plain
# http from another machine) it copies through a selected text box instead.
COPY = (
    "const url = location.origin + location.pathname + '?' + {query}; const button = this; "
    "const done = () => {{ button.textContent = 'copied'; setTimeout(() => button.textContent = 'copy link', 1500); }};"
    " const fallback = () => {{ const box = document.createElement('textarea'); box.value = url; "
    "document.body.appendChild(box); box.select(); document.execCommand('copy'); box.remove(); done(); }};"
    " if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(url).then(done, fallback);"
    " else fallback();"
)


def link_html(query: str) -> str:
    """The link to the view with URL query `query`, a button that copies it, and the query in small print."""
    shown = html.escape(query)
    script = html.escape(COPY.format(query=json.dumps(query)), quote=True)
    return (
        f"<a href='?{shown}' target='_blank'>link to this view</a> <button class='lg-copy-link' type='button' "
        f"title='copy the link to this view' onclick=\"{script}\">copy link</button><br><code "
        f"style='font-size:11px'>?{shown}</code>"
    )


def request_query() -> str:
    """The page's URL query; a pre-heated Voila kernel (voila.json) first waits here for its visitor."""
    if os.environ.get("VOILA_PREHEAT", "False") != "False":
        from voila.utils import wait_for_request

        wait_for_request()
    return os.environ.get("QUERY_STRING", "")
