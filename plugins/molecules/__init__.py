"""igkit molecules plugin."""
