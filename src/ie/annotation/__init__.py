"""Label Studio: the labeling config and export format, the server client, markup, statistics."""
