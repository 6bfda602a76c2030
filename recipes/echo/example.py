example = ["hello", {"any": "json"}, [1, 2, 3], 4.5]
