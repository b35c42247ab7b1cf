"""cervdet's benchmark scripts (run as ``python benchmarks/<name>.py``; the
tests import them as ``benchmarks.<name>``)."""
