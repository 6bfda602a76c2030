example = ["a", "b", "c", "d"]
