import time


def predictor(inputs, batch_size):
    """Costs no CPU: 20 ms per batch plus 1 ms per item, so only the serving stack's cost shows."""
    time.sleep(0.020 + 0.001 * len(inputs))
    return list(inputs)
