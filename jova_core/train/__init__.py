"""Training JoVA: data, losses, LoRA and the trainer loop."""
