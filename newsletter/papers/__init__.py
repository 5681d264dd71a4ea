"""Papers: normalised records from every source, cleaned and deduplicated."""
