"""Process and run bookkeeping without Dagster: whether a process is alive, the code version
written into outputs, the progress hook stages report to, and the platform's own database
connections (``runtime.database``)."""
