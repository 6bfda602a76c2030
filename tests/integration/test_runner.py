"""Chaining, streaming and files through real loops, with the in-process runner."""

from __future__ import annotations

import importlib.util

import pytest
from click.testing import CliRunner

from fastdeploy.cli import main
from fastdeploy.errors import RecipeError
from fastdeploy.recipe import load_recipe
from fastdeploy.runner import PredictionFailed, RecipeRunner
from fastdeploy.settings import Settings
from fastdeploy.store.codec import FileInput, FileOutput
from fastdeploy.templates import TEMPLATES
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "recipes"
FIXED = Settings(batch_size=8, max_batch_size=8)


def test_chained_stages_feed_each_other_and_keep_order():
    with RecipeRunner(ROOT / "recipes" / "echo_chained", FIXED) as runner:
        outputs = runner.predict(["ab", "c", 7])
        assert runner.batch_sizes == [8, 8]
    assert [(o["upper"], o["length"]) for o in outputs] == [("AB", 2), ("C", 1), ("7", 1)]


def test_chained_recipe_tunes_each_stage_separately():
    with RecipeRunner(ROOT / "recipes" / "echo_chained", Settings(max_batch_size=4)) as runner:
        assert len(runner.batch_sizes) == 2
        assert all(1 <= size <= 4 for size in runner.batch_sizes)


def test_failure_in_a_later_stage_names_the_stage_and_spares_other_requests():
    with RecipeRunner(DATA / "chain_fail", FIXED) as runner:
        with pytest.raises(PredictionFailed) as failed:
            runner.predict(["boom"])
        assert runner.predict(["fine"]) == ["FINE!"]
    assert failed.value.code == "predictor_failed"
    assert "stage 2 (predictor_2.py)" in failed.value.message
    assert "RuntimeError: stage two exploded" in failed.value.message


def test_stage_numbers_must_not_have_gaps(tmp_path):
    folder = tmp_path / "gappy"
    folder.mkdir()
    for name in ("predictor_1.py", "predictor_3.py"):
        (folder / name).write_text("def predictor(inputs, batch_size):\n    return inputs\n")
    (folder / "example.py").write_text("example = [1]\n")
    (folder / "requirements.txt").write_text("")
    with pytest.raises(RecipeError, match=r"stages \[1, 3\]; number them 1, 2, 3"):
        load_recipe(folder)


def test_streaming_recipe_streams_chunks_in_order():
    with RecipeRunner(ROOT / "recipes" / "streaming_text", FIXED) as runner:
        chunks = list(runner.stream(["one two", "three"]))
        whole = runner.predict(["one two"])
    assert "".join(c for i, c in chunks if i == 0) == "you said: one two "
    assert "".join(c for i, c in chunks if i == 1) == "you said: three "
    assert whole == [["you ", "said: ", "one ", "two "]]


def test_file_inputs_arrive_as_paths_that_are_removed_after_the_batch():
    with RecipeRunner(DATA / "file_sizes", FIXED) as runner:
        [answer, plain] = runner.predict([FileInput("../../etc/x.txt", "text/plain", b"hello file"), "text"])
    assert answer["size"] == 10 and answer["head"] == "hello file"
    assert answer["path"].endswith("-x.txt")  # the client's name cannot climb out of the folder
    assert "/etc/" not in answer["path"] and "/../" not in answer["path"]
    assert not __import__("os").path.exists(answer["path"])
    assert plain == {"value": "text"}


def test_file_outputs_come_back_as_files_and_leaks_are_refused():
    with RecipeRunner(DATA / "leaky_files", FIXED) as runner:
        [file] = runner.predict(["x"])
        with pytest.raises(PredictionFailed, match="outside its output folder"):
            runner.predict(["leak"])
    assert file == FileOutput("x.txt", "text/plain", b"file for x")


@pytest.mark.parametrize("template", TEMPLATES)
def test_new_recipe_templates_work_out_of_the_box(tmp_path, template):
    needed = {"torch": "torch", "tensorflow": "tensorflow"}.get(template)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{needed} is not installed (pip install -e '.[{template}]')")
    result = CliRunner().invoke(main, ["--new-recipe", str(tmp_path / "mine"), "--template", template])
    assert result.exit_code == 0, result.output
    assert "fastdeploy --run" in result.output
    with RecipeRunner(tmp_path / "mine", FIXED) as runner:
        example = runner.recipe.example()
        outputs = runner.predict(example)
    assert len(outputs) == len(example)
    again = CliRunner().invoke(main, ["--new-recipe", str(tmp_path / "mine")])
    assert again.exit_code == 1 and "already exists; pick a new folder name" in again.output


def test_a_result_that_expired_before_it_was_read_fails_with_the_setting_to_raise():
    # two inputs over two batches of one: the result is read back from the store, where it already expired
    with RecipeRunner(ROOT / "recipes" / "echo", Settings(batch_size=1, max_batch_size=1, result_ttl_s=1e-6)) as runner:
        with pytest.raises(PredictionFailed) as failed:
            runner.predict(["a", "b"])
    assert failed.value.code == "not_found"
    assert "FASTDEPLOY_RESULT_TTL_S" in failed.value.message
