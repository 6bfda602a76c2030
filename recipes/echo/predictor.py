def predictor(inputs, batch_size):
    """Return every input unchanged: the smallest recipe, and the default one."""
    return list(inputs)
