def predictor(inputs, batch_size):
    """Stage 1: normalise each input to text (think: a CPU pre-processing step)."""
    return [{"text": str(x), "upper": str(x).upper()} for x in inputs]
