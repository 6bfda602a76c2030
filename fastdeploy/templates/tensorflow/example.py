example = [[0.1 * i for i in range(8)], [1.0] * 8, [-1.0, 0.5] * 4]
