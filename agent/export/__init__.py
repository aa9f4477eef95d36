"""Pure renderers of the catalogue: templates, agent config files, the metrics reference."""
