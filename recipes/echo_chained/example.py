example = ["hello", "fastdeploy", 42]
