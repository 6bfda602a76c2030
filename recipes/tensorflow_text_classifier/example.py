example = ["a great movie", "the plot was terrible", "good actor, bad film"]
