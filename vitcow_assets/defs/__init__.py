"""Dagster wiring: partitions, resources, assets, checks, sensors, schedules."""
