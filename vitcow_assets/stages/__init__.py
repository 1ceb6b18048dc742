"""The work of each asset as plain functions over files: no Dagster here.

Each stage streams the source video once, front to back, and writes its outputs atomically.
"""
