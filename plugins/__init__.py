"""Built-in igkit plugins; each registers through the ``igkit`` entry-point group."""
