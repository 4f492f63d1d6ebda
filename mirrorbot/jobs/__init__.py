"""One module per job a command runs; wires config, state and engine."""
