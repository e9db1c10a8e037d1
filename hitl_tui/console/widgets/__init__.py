"""Console widgets, one per file: panes, detail panels, the virtual table, bars."""
