"""The foundation every stage shares: the label schema, the Document, safe file writes."""
