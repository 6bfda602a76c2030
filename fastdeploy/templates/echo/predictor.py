def predictor(inputs, batch_size):
    """Called with a list of inputs (several requests batched together); return one output per input."""
    return [{"input": x} for x in inputs]
