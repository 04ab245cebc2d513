"""Entry point of the text plugin (placeholder hooks are added as the plugin lands)."""
