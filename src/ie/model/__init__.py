"""Documents to model inputs and back: features, the encoder, the joint model, batch prediction."""
