"""Behaviour labelling: the taxonomy file, labels in a database, work queues, the labelling page."""
