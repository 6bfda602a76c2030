"""fastdeploy: put a batch predictor behind an HTTP API with a tmpfs queue between them."""

__version__ = "0.1.0"
