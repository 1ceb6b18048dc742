"""Process and run bookkeeping without Dagster: whether a process is alive, the code version
written into outputs, and the progress hook stages report to."""
