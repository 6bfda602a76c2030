example = ["abc"]
