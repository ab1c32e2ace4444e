"""Fine-tuning the joint model with accelerate."""
