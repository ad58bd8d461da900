"""The process and the machine, below every stage: clean stops, children that die with their
parent, progress lines, quiet timing, NVML, data-parallel set-up and the environment
fingerprint."""
