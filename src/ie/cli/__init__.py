"""Console scripts. Each one reads arguments, calls the library and reports; no logic lives here."""
