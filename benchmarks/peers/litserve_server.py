"""LitServe serving a benchmark recipe's predictor: a LitAPI with max_batch_size=32, batch_timeout 5 ms.

    python benchmarks/peers/litserve_server.py RECIPE_DIR PORT

Run inside a venv that has litserve (benchmarks/compare.py makes one).
"""

import sys

import litserve as ls

recipe_dir, port = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, recipe_dir)
from predictor import predictor  # noqa: E402  (the recipe's own module)


class RecipeAPI(ls.LitAPI):
    def setup(self, device):
        pass

    def decode_request(self, request):
        return request["input"]

    def batch(self, inputs):
        return list(inputs)

    def predict(self, batch):
        return predictor(batch, len(batch))

    def unbatch(self, outputs):
        return list(outputs)

    def encode_response(self, output):
        return {"output": output}


if __name__ == "__main__":
    server = ls.LitServer(RecipeAPI(max_batch_size=32, batch_timeout=0.005), accelerator="cpu")
    server.run(port=port, host="127.0.0.1", generate_client_file=False)
