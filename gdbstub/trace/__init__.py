"""Tracepoints: definitions, the trace buffer and the run (issue 17)."""
