def predictor(inputs, batch_size):
    return [str(x)[::-1] for x in inputs]
