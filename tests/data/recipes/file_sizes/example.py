import os

_SAMPLE = os.path.join(os.path.dirname(__file__), "requirements.txt")
example = [_SAMPLE, "not a file"]
