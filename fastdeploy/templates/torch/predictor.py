"""A torch model served on CPU; replace the model and the pre/post-processing with yours."""

import torch

torch.set_num_threads(1)  # one loop process per core scales better than threads inside one
torch.manual_seed(0)

MODEL = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)).eval()


def predictor(inputs, batch_size):
    """Each input is a list of 8 numbers; the answer is the index of the highest score and the scores."""
    with torch.inference_mode():
        scores = MODEL(torch.tensor(inputs, dtype=torch.float32)).softmax(dim=1)
    return [{"label": int(row.argmax()), "scores": row.tolist()} for row in scores]
