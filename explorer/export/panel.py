"""Panel 4, settings and export: the view as JSON that follows the page until edited, a link, and the export button."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go

from core.atomic import write_text
from explorer.export.files import export_all, file_url, view_folder
from explorer.export.link import link_html
from explorer.settings import Settings
from explorer.widgets.fields import TextArea, report_to
from explorer.widgets.style import heading, message_html

PNG_NOTE = "The figures are HTML files that open offline; PNG images would need the kaleido package."
EDITED = "you edited the settings: press apply settings to use them, or discard my edits to follow the page"


class SettingsPanel:
    """The settings box, its buttons and messages, the link and the export button; `apply(text)` and `export()` are
    the page's, called when the user presses apply settings and export."""

    def __init__(self, apply: Callable[[str], object], export: Callable[[], object]) -> None:
        self.settings_text = TextArea(layout=widgets.Layout(width="420px", height="320px"))
        self.settings_text.add_class("lg-settings-json")
        self.export_settings = widgets.Button(
            description="discard my edits", icon="undo", layout=widgets.Layout(width="auto")
        )
        self.import_settings = widgets.Button(
            description="apply settings", icon="upload", layout=widgets.Layout(width="auto")
        )
        self.settings_message = widgets.HTML()
        self.settings_message.add_class("lg-settings-message")
        report_to(self.settings_message, settings=self.settings_text)
        self.link = widgets.HTML()
        self.export_button = widgets.Button(
            description="export results and figures", icon="save", layout=widgets.Layout(width="auto")
        )
        self.export_button.add_class("lg-export")
        self.export_message = widgets.HTML()
        self.import_settings.on_click(lambda _: apply(self.settings_text.value))
        self.export_button.on_click(lambda _: export())
        self.settings_text.observe(lambda _: self._note_edits(), "value")
        self._written = ""
        self.widget = widgets.VBox(
            [
                heading(
                    "4 · Settings and export",
                    "This view as JSON (it follows the page as you change it; edit it and press apply) or as a link "
                    "to share; export writes CSV tables and standalone HTML figures into the run's export folder and "
                    "offers them for download.",
                ),
                widgets.HBox(
                    [
                        self.settings_text,
                        widgets.VBox(
                            [
                                self.export_settings,
                                self.import_settings,
                                self.settings_message,
                                self.link,
                                self.export_button,
                                self.export_message,
                            ],
                            layout=widgets.Layout(margin="0 0 0 12px"),
                        ),
                    ]
                ),
            ]
        )
        self.widget.add_class("lg-panel-settings")

    def reset(self, settings: Settings) -> None:
        """Write `settings` into the box, discarding the user's edits, and refresh the link."""
        self._written = ""
        self.settings_text.value = ""
        self.follow(settings)

    def follow(self, settings: Settings) -> None:
        """Keep the link and the box on the view `settings`; a box the user has edited is left alone."""
        self.link.value = link_html(settings.to_query())
        if self.settings_text.value in ("", self._written):
            text = settings.to_json()
            self._written = text
            self.settings_text.value = text

    def _note_edits(self) -> None:
        if self.settings_text.value not in ("", self._written):
            self.settings_message.value = message_html(EDITED, "warning")

    def export(
        self, run_dir: Path, settings: Settings, figures: Mapping[str, go.Figure], tables: Mapping[str, list[dict]]
    ) -> list[Path]:
        """Write the figures (HTML), tables (CSV) and settings of one view into its folder of the run's export
        folder; list them as download links (or as paths, where this page serves no files)."""
        text = settings.to_json()
        folder = view_folder(run_dir, text)
        try:
            paths = export_all(folder, figures, tables)
            write_text(folder / "settings.json", text)
        except OSError as exc:
            self.export_message.value = message_html(
                f"could not write into {folder} ({exc.strerror}): check that it is writable", "error"
            )
            return []
        paths.append(folder / "settings.json")
        links = [file_url(p) for p in paths]
        items = "".join(
            f"<li><a href='{html.escape(url, quote=True)}' download='{html.escape(p.name, quote=True)}' "
            f"target='_blank'>{html.escape(p.name)}</a></li>"
            if url
            else f"<li><code>{html.escape(str(p))}</code></li>"
            for p, url in zip(paths, links)
        )
        where = html.escape(str(folder))
        note = (
            f"download them, or find them in <code>{where}</code>"
            if all(links)
            else f"in <code>{where}</code> (this page serves no files from there: start it with "
            "<code>make explore</code> for download links)"
        )
        self.export_message.value = (
            f"<div class='lg-export-files'>{len(paths)} files written, {note}:<ul style='margin:2px 0'>{items}</ul>"
            f"<span style='color:#777'>{PNG_NOTE}</span></div>"
        )
        return paths
