"""Training a cell's network: the loop (fit) and its schedules."""
