def predictor(inputs, batch_size):
    if "boom!" in inputs:
        raise RuntimeError("stage two exploded")
    return [x.upper() for x in inputs]
