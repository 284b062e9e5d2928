"""The kit kernel: its source, configs and patches, built once into the cache, and packed for grading images."""
