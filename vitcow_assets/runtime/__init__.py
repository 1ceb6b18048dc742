"""Process and run bookkeeping without Dagster: whether a process is alive, the package
version and commit written into outputs (``version``, provenance), code versions hashed from
source (``code_versions``), the progress hook stages report to, and the platform's own
database connections (``database``)."""
