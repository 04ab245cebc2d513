"""The ``igkit`` command: its entry point (:mod:`igkit.cli.main`) and the explain command every
domain shares (:mod:`igkit.cli.commands`)."""
