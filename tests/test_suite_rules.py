"""The suite's own rules: a green run means every test ran, or says plainly which did not and why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_pytest(arguments: list[str], ci: bool, **environment: str) -> subprocess.CompletedProcess:
    """Run pytest on ``arguments`` from the repository, with ``CI`` set or not, and ``environment`` added."""
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(environment)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


MISSING_PACKAGE_TEST = '''
import pytest

def test_needs_a_meter_package():
    pytest.importorskip("no_such_meter_package")
'''


def test_a_test_whose_package_is_missing_skips_with_the_reason_last_and_fails_under_ci():
    """Without a package a test needs, a run skips it and its last line says why; under CI the run fails."""
    test_file = REPO / "tests" / f"test_generated_missing_package_{os.getpid()}.py"
    test_file.write_text(MISSING_PACKAGE_TEST)
    try:
        local = run_pytest([str(test_file)], ci=False)
        ci = run_pytest([str(test_file)], ci=True)
    finally:
        test_file.unlink()
    assert local.returncode == 0, local.stdout
    assert local.stdout.strip().splitlines()[-1] == (
        "1 test skipped, and why: 1 x could not import 'no_such_meter_package': No module named 'no_such_meter_package'"
    )
    assert ci.returncode == 1, ci.stdout
    assert "no_such_meter_package': No module named 'no_such_meter_package'; under CI a missing package fails" \
        in ci.stdout


def test_browser_tests_without_chromium_skip_and_fail_under_ci(tmp_path):
    """Without Chromium the browser tests skip, saying how to get it; under CI they fail the run."""
    test = "tests/e2e/test_e2e_diagnostics.py"
    missing = {"EXPLORER_TEST_CHROMIUM": str(tmp_path / "no-chromium")}
    local = run_pytest([test], ci=False, **missing)
    ci = run_pytest([test], ci=True, **missing)
    assert local.returncode == 0, local.stdout
    assert "1 test skipped, and why: 1 x Browser tests need Chromium at" in local.stdout.strip().splitlines()[-1]
    assert ci.returncode == 1, ci.stdout
    assert "under CI a missing browser fails the run" in ci.stdout
