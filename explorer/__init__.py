"""The Learngene Explorer widgets: `explorer.show()` displays the app in a notebook cell or a Voila page."""

from explorer.app import ExplorerApp, build, show

__all__ = ["ExplorerApp", "build", "show"]
