"""kyoten.agent: the agent-side collector, its metric catalogue and the projections of it."""
