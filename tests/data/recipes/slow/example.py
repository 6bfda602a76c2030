example = [1, 2, 3]
