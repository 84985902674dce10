"""The page's one view: an observable Settings that the panels write and follow; the settings box and the link are
its serialisation."""

from __future__ import annotations

import dataclasses

import traitlets

from explorer.settings import Settings


class View(traitlets.HasTraits):
    """Which run, criterion, selection and task setup the page shows. Each panel writes the fields it owns with
    `update` when its user changes them; whoever shows the whole view (the settings box, the link, an export)
    observes `settings`, which changes only when a field does."""

    settings = traitlets.Instance(Settings, kw={})

    def update(self, **fields: object) -> None:
        """Change some fields of the view (observers hear of it once, and only if something changed)."""
        self.settings = dataclasses.replace(self.settings, **fields)
