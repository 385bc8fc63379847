"""Training stack (torch): models, data, losses, pruning and training loops."""
