"""`doppler generate`: every bad input is refused before any GPU starts, with a message naming it and the fix."""

import os
import subprocess
import sys

import pytest

from doppler import generate
from doppler.cli import main as cli
from doppler.serve import PROJECT_ROOT


def fails(capsys, *argv) -> str:
    """Run the command, expecting exit status 1; its stderr."""
    assert cli(["generate", "a cat", *argv]) == 1
    return capsys.readouterr().err


def usage_error(capsys, *argv) -> str:
    """Run the command, expecting argparse's usage error (status 2); its stderr."""
    with pytest.raises(SystemExit) as exit_:
        cli(["generate", "a cat", *argv])
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_a_missing_model_folder_is_named(capsys, tmp_path):
    err = fails(capsys, "--model", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.png"))
    assert "nowhere: no manifest.json there" in err and "doppler convert" in err
    assert not (tmp_path / "x.png").exists()


def test_a_missing_default_model_says_how_to_build_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "DEFAULT_MODEL", tmp_path / "tiny-random")
    assert "make tiny-model" in fails(capsys, "-o", str(tmp_path / "x.png"))


@pytest.mark.parametrize("size", ["big", "64x", "x64", "-64"])
def test_a_size_that_is_not_wxh_is_a_usage_error(capsys, size):
    assert f"expected WxH or N in pixels (e.g. 512x768 or 512), got {size!r}" in usage_error(capsys, "--size", size)


def test_sizes_parse():
    assert generate.parse_size("512x768") == (512, 768) and generate.parse_size("320") == (320, 320)


def test_a_size_off_the_model_grid_names_the_setting(capsys, random_tiny, tmp_path):
    err = fails(capsys, "--model", str(random_tiny), "--size", "500x64", "-o", str(tmp_path / "x.png"))
    assert "runtime.inference.diffusion.latent.width: got 500" in err and "a multiple of 8" in err


def test_an_unknown_scheduler_names_the_choices(capsys, random_tiny, tmp_path):
    err = fails(capsys, "--model", str(random_tiny / "manifest.json"), "--scheduler", "plms",
                "-o", str(tmp_path / "x.png"))
    assert 'scheduler.type: got "plms"; expected one of' in err and '"euler_a"' in err


def test_the_output_must_be_a_png(capsys, random_tiny):
    assert "give a name ending in .png" in usage_error(capsys, "--model", str(random_tiny), "-o", "out.jpg")


def test_left_out_settings_come_from_the_manifest(random_tiny):
    args = generate_args("--model", str(random_tiny), "--steps", "3", "--seed", "5")
    job = generate.make_job(args)
    assert job.request == {"prompt": "a cat", "negativePrompt": "", "steps": 3, "guidance": 7.5, "scheduler": "ddim",
                           "seed": 5, "width": 64, "height": 64}
    assert job.parameters() == {"model": "tiny-random", **job.request}


def test_a_seed_left_out_is_drawn_once_and_recorded(random_tiny):
    seed = generate.make_job(generate_args("--model", str(random_tiny))).request["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**32


def generate_args(*argv):
    from doppler.cli import _build_parser

    return _build_parser().parse_args(["generate", "a cat", *argv])


def test_a_page_error_is_the_python_exception_alone():
    message = (
        "Error: Traceback (most recent call last):\n"
        '  File "/home/pyodide/lib/doppler/api.py", line 186, in handle\n'
        "    return json.dumps(_jsonable(await fn(**json.loads(args_json))))\n"
        "                                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/home/pyodide/lib/doppler/loader/stores.py", line 120, in ensure\n'
        "    raise ShardError(...)\n"
        "doppler.loader.stores.ShardError: shard 1 (unet-000.bin): HTTP 404\n"
        "second line of the message\n"
        "    at DopplerClient._receive (http://127.0.0.1:35049/app/client.mjs:20:49)\n"
        "    at DopplerClient.worker.onmessage (http://127.0.0.1:35049/app/client.mjs:9:41)")
    assert generate.page_error(message) == ("doppler.loader.stores.ShardError: shard 1 (unet-000.bin): HTTP 404\n"
                                            "second line of the message")
    assert generate.page_error("Error: the worker failed\n    at x (y.mjs:1:1)") == "Error: the worker failed"


def test_no_chromium_says_where_it_looked(random_tiny, tmp_path):
    # A subprocess: Playwright's sync API refuses to start inside a session that runs the browser fixtures.
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "py"), "DOPPLER_CHROMIUM": str(tmp_path / "chromium")}
    done = subprocess.run([sys.executable, "-m", "doppler.cli", "generate", "a cat", "--model", str(random_tiny),
                           "-o", str(tmp_path / "x.png")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"no Chromium at {tmp_path / 'chromium'}" in done.stderr and "DOPPLER_CHROMIUM" in done.stderr
    assert not (tmp_path / "x.png").exists()
