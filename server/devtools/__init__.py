"""The demo, the simulator and generated data: never part of a real meeting's path."""
