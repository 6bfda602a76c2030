example = ["a red square", "a blue circle"]
