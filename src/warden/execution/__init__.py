"""Action plane: the executor and its adapters."""
