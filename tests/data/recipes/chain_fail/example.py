example = ["a", "b"]
