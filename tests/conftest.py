import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m pipeline.cli ARGS` (the `twins` command) as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )


def run_script(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env())


def _env():
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def repo() -> Path:
    return REPO


def pictures(n: int, height: int, width: int, channels: int = 0, seed: int = 0) -> np.ndarray:
    """n random uint8 pictures (N, H, W[, C]) made of 2 x 2 blocks, so neighbouring pixels correlate as in a photo:
    pure pixel noise is what the group stage reports as an odd (broken) image."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(
        0, 256, (n, height // 2 + 1, width // 2 + 1) + ((channels,) if channels else ()), dtype=np.uint8
    )
    return blocks.repeat(2, axis=1).repeat(2, axis=2)[:, :height, :width]


def browser(download_dir):
    """Headless Chromium through selenium (Debian's chromium and chromium-driver, which .ci/run installs where they
    are missing), downloads going to download_dir; skips, saying why, only where there is none."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no chromium and chromedriver here (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(download_dir), "download.prompt_for_download": False}
    )
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(driver_path), options=options)
