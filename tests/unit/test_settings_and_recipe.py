from __future__ import annotations

import pytest
from click.testing import CliRunner

from fastdeploy.cli import main
from fastdeploy.errors import RecipeError
from fastdeploy.recipe import check_outputs, load_recipe
from fastdeploy.settings import Settings, settings_table
from tests.conftest import ECHO, write_recipe


def test_env_vars_set_settings_and_overrides_win():
    settings = Settings.from_env({"FASTDEPLOY_PORT": "9000", "FASTDEPLOY_MAX_WAIT_MS": "2.5"}, workers=3)
    assert (settings.port, settings.max_wait_ms, settings.workers) == (9000, 2.5, 3)
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize("env, message", [
    ({"FASTDEPLOY_PORT": "eighty"}, "FASTDEPLOY_PORT='eighty' is not a valid int"),
    ({"FASTDEPLOY_LEASE_S": "-1"}, "lease_s is -1.0"),
    ({"FASTDEPLOY_BATCH_SIZE": "500"}, "batch_size 500 is above max_batch_size"),
    ({"FASTDEPLOY_LOG_LEVEL": "loud"}, "log_level"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_meta_masks_the_webhook_secret():
    assert Settings(webhook_secret="s3cret").public()["webhook_secret"] == "***"


def test_help_documents_every_setting_with_env_var_and_default():
    text = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    for name in Settings.__dataclass_fields__:
        assert f"FASTDEPLOY_{name.upper()}" in text
    assert "default: 8080" in text


def test_cli_needs_exactly_one_mode():
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 2
    assert "exactly one of --run" in result.output


def test_echo_recipe_loads():
    recipe = load_recipe(ECHO)
    assert recipe.name == "echo"
    assert recipe.stage(1).predictor(recipe.example(), 4) == recipe.example()


@pytest.mark.parametrize("files, message", [
    ({"predictor": None}, "has no predictor.py"),
    ({"example": None}, "has no example.py"),
    ({"requirements": None}, "has no requirements.txt"),
    ({"example": "example = []\n"}, "must define 'example' as a non-empty list"),
])
def test_broken_recipes_name_the_file_and_the_fix(tmp_path, files, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write_recipe(tmp_path / "broken", **files))


@pytest.mark.parametrize("predictor, message", [
    ("def predict(x):\n    return x\n", "has no function 'predictor'"),
    ("import not_a_module_anywhere\n", "importing .*predictor.py failed"),
])
def test_broken_predictors_fail_when_their_stage_loads(tmp_path, predictor, message):
    recipe = load_recipe(write_recipe(tmp_path / "broken", predictor=predictor))
    with pytest.raises(RecipeError, match=message):
        recipe.stage(1).predictor


def test_wrong_length_answer_names_counts_and_file(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "short"))
    with pytest.raises(RecipeError, match=r"returned 3 outputs for 4 inputs in .*short/predictor.py"):
        check_outputs(recipe.stage(1), [1, 2, 3, 4], [1, 2, 3])


def test_requirements_skip_comments_and_blank_lines(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "reqs", requirements="# models\nnumpy>=1\n\nrequests  # http\n"))
    assert recipe.requirements == ["numpy>=1", "requests"]


def test_configuration_doc_lists_every_setting_as_declared():
    text = (ECHO.parent.parent / "docs" / "configuration.md").read_text()
    assert settings_table() in text, "regenerate the table: python -m fastdeploy.settings"
