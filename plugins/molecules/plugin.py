"""Entry point of the molecules plugin (placeholder hooks are added as the plugin lands)."""
