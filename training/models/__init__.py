"""Edge-detection models. Each module defines one model and nothing else."""
