"""Whether a verdict holds across scale: two runs agreed (`rpg-bench agree`) and a compute ladder
of runs (`rpg-bench ladder`)."""
