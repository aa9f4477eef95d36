"""Stand-ins for services that cannot run here, faithful enough for tests and the demo."""
