"""Footage and outputs on other machines: SFTP servers and S3-compatible buckets via fsspec.

``locations``: URLs and named landing sources; ``filesystems``: a connected fsspec file
system per location, credentials from the environment only; ``transfer``: streamed,
hashed, resumable downloads and atomic uploads; ``listing``: what a source holds.
"""
