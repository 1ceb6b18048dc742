"""Video and file I/O: probing, a streaming frame reader, context-managed atomic writers."""
