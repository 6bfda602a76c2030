from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "samples"
example = [str(SAMPLES / "red_square.png"), str(SAMPLES / "blue_circle.png")]
