example = ["a sample input", "another one"]
