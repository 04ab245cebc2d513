"""Entry point of the vision plugin (placeholder hooks are added as the plugin lands)."""
