"""igkit vision plugin."""
