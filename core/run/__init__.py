"""Running many items: the runner (one item's path to its result), the run-folder driver (resume,
atomic item folders, report.json), the engines that compute items here or elsewhere, and progress."""
