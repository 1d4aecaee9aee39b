"""The README's examples run as written: every ```bash and ```python block, in order, in one workspace shaped like the
repository root (sample_images/, models/) plus what the examples say a user has (photos/ sorted into
class folders).  Blocks preceded by ``<!-- not run: reason -->`` are skipped; they need a GPU, the
internet or are the set-up itself."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import texture_photo

from crackcli.io.images import write_image

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- not run: (?P<reason>[^>]+) -->\n)?```(?P<language>bash|python)\n(?P<code>.*?)```", re.S)
RUNNERS = {"bash": ["bash", "-euo", "pipefail", "-c"], "python": [sys.executable, "-c"]}


def readme_blocks() -> list[tuple[str, str | None, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [(m["code"], m["reason"], m["language"]) for m in BLOCK.finditer(text)]


@pytest.fixture
def workspace(tmp_path):
    shutil.copytree(REPO / "sample_images", tmp_path / "sample_images")  # a copy: `find` does not follow links
    (tmp_path / "models").symlink_to(REPO / "models")
    for i in range(5):
        write_image(
            tmp_path / "photos" / "crack" / f"wall{i}.jpg", texture_photo(448, 448, seed=i, crack_rows=(100, 330))
        )
        write_image(tmp_path / "photos" / "no_crack" / f"slab{i}.jpg", texture_photo(448, 448, seed=10 + i))
    return tmp_path


def user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CRACK_MODEL"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_readme_has_examples_and_says_why_any_are_not_run():
    blocks = readme_blocks()
    assert sum(reason is None for _, reason, _ in blocks) >= 8
    assert any(language == "python" and reason is None for _, reason, language in blocks)
    assert all(reason is None or len(reason.split()) >= 3 for _, reason, _ in blocks)


def test_every_readme_example_runs(workspace):
    env = user_env()
    for code, reason, language in readme_blocks():
        if reason is not None:
            continue
        proc = subprocess.run([*RUNNERS[language], code], cwd=workspace, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"README example failed:\n{code}\n--- stderr:\n{proc.stderr[-3000:]}"
    assert (workspace / "runs" / "scan" / "my-model" / "summary.csv").is_file()
    assert (workspace / "runs" / "scan" / "library" / "summary.csv").is_file()


def test_make_demo_script_scans_a_sample_photo(workspace):
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh"), str(Path(sys.executable).parent)],
        cwd=workspace,
        env=user_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "windows" in proc.stdout and "overlay: runs/demo/synth_0001_overlay.jpg" in proc.stdout
    assert (workspace / "runs" / "demo" / "synth_0001_overlay.jpg").stat().st_size > 10_000
