def predictor(inputs, batch_size):
    return [f"{x}!" for x in inputs]
