example = ["hello there", "stream me a few words please"]
