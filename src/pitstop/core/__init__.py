"""The vocabulary of pitstop. Imports nothing else of pitstop."""
