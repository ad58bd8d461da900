"""Measuring a trained model: latency, memory, FLOPs and the ONNX check (runtime), the figures
shared by cells of one shape (cache), memory in a fresh process (memprobe), `rpg-bench speed`,
and Section 5.6's wrong seeds."""
