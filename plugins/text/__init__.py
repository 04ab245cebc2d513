"""igkit text plugin."""
