example = ["stream these words one by one", "short one"]
