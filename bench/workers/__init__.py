"""Worker-side scripts of the benchmark; each runs as a script with this folder on its path."""
