"""Specification of the install: torch is a CPU build on every platform, never PyPI's CUDA build on Linux, and `make`
installs it from this machine's package index without reaching for download.pytorch.org.

requirements.txt is read as pip and uv read it (``packaging``'s requirements and markers, evaluated for each target
platform and Python); the Makefile's rule that adapts it to this machine runs with a stand-in Python, so nothing here
touches a network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
TORCH = Version("2.13.0")
CPU_INDEX = "https://download.pytorch.org/whl/cpu/"
CLOUD_PYTHONS = ["3.11", "3.12"]
"""The Pythons Streamlit Community Cloud offers on which the pinned set installs (kokoro and misaki need < 3.13,
streamlit 1.67 needs >= 3.11); the torch lines also cover 3.10, which kokoro supports."""
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                     "os_name": "posix"},
    "linux-aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64",
                      "os_name": "posix"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                    "os_name": "posix"},
    "windows-amd64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
                      "os_name": "nt"},
}


def requirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    """Return the requirements a requirements file holds (comments and blank lines skipped; options refused)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("-"), f"{path.name}: pip options ({line}) are not expected here"
        found.append(Requirement(line))
    return found


def environment(platform: str, python: str) -> dict[str, str]:
    """Return the marker environment of ``platform`` (a key of PLATFORMS) running CPython ``python``."""
    return {**default_environment(), **PLATFORMS[platform], "python_version": python,
            "python_full_version": f"{python}.0", "implementation_name": "cpython",
            "platform_python_implementation": "CPython"}


def torch_lines(platform: str, python: str, path: Path = REQUIREMENTS) -> list[Requirement]:
    """Return the torch requirements that apply on ``platform`` with ``python`` (markers true there)."""
    env = environment(platform, python)
    return [req for req in requirements(path)
            if req.name == "torch" and (req.marker is None or req.marker.evaluate(env))]


def assert_cpu_wheel(requirement: Requirement, machine: str, python: str) -> None:
    """The requirement names PyTorch's CPU wheel of torch 2.13.0 for ``machine`` and CPython ``python``."""
    assert requirement.url and requirement.url.startswith(CPU_INDEX), requirement
    name, version, _, tags = parse_wheel_filename(requirement.url.rsplit("/", 1)[1].replace("%2B", "+"))
    assert name == "torch" and version == Version(f"{TORCH}+cpu"), requirement.url
    interpreter = "cp" + python.replace(".", "")
    assert {(tag.interpreter, tag.abi) for tag in tags} == {(interpreter, interpreter)}, requirement.url
    assert all(tag.platform == f"manylinux_2_28_{machine}" for tag in tags), requirement.url


@pytest.mark.parametrize("python", ["3.10", *CLOUD_PYTHONS])
@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_linux_installs_pytorchs_cpu_wheel_by_direct_url(machine, python):
    """On Linux the plain pin would resolve on PyPI to the CUDA build and its nvidia-* packages (several GB)."""
    found = torch_lines(f"linux-{machine}", python)
    assert len(found) == 1, found
    assert_cpu_wheel(found[0], machine, python)


@pytest.mark.parametrize("python", ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"])
@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_no_python_on_linux_gets_the_plain_pin_that_pulls_cuda(machine, python):
    assert all(req.url for req in torch_lines(f"linux-{machine}", python))


@pytest.mark.parametrize("package", ["kokoro", "misaki"])
def test_every_python_the_pinned_kokoro_and_misaki_support_has_its_cpu_wheel(package):
    """Read from the installed packages' metadata: kokoro 0.9.4 and misaki 0.9.4 need Python below 3.13."""
    supported = SpecifierSet(metadata.metadata(package)["Requires-Python"] or "")
    pythons = [f"3.{minor}" for minor in range(10, 16) if f"3.{minor}" in supported]
    assert "3.11" in pythons and "3.13" not in pythons, supported
    for python in pythons:
        (found,) = torch_lines("linux-x86_64", python)
        assert_cpu_wheel(found, "x86_64", python)


@pytest.mark.parametrize("python", CLOUD_PYTHONS)
@pytest.mark.parametrize("platform", ["macos-arm64", "windows-amd64"])
def test_macos_and_windows_keep_the_plain_pin_whose_wheel_is_the_cpu_build(platform, python):
    (found,) = torch_lines(platform, python)
    assert found.url is None and str(found.specifier) == f"=={TORCH}"


def test_every_torch_line_names_the_same_release():
    versions = set()
    for req in requirements():
        if req.name == "torch":
            versions.add(parse_wheel_filename(req.url.rsplit("/", 1)[1].replace("%2B", "+"))[1].public if req.url
                         else str(req.specifier).removeprefix("=="))
    assert versions == {str(TORCH)}


@pytest.mark.parametrize("path", sorted(ROOT.glob("requirements*.txt")), ids=lambda path: path.name)
def test_no_requirements_file_names_cuda_packages_or_another_index(path):
    """No nvidia-*/triton; no index or find-links option (uv would take packages from it, pip retries it offline)."""
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        assert not line.startswith(("-i", "--index-url", "--extra-index-url", "-f", "--find-links")), line
    names = {req.name.lower() for req in requirements(path)}
    assert not {name for name in names if name.startswith("nvidia") or name in {"triton", "pytorch-triton"}}


# --- make: the same file, installed from this machine's index ---------------------------------------------------------


def makefile_recipes() -> str:
    return (ROOT / "Makefile").read_text(encoding="utf-8")


def test_make_installs_the_adapted_file_never_requirements_txt_itself():
    """Both install rules read ``$(HERE_REQS)``: requirements.txt as this machine installs it."""
    installs = [line.strip() for line in makefile_recipes().splitlines() if "pip install" in line and " -r " in line]
    assert len(installs) == 2 and all("-r $(HERE_REQS)" in line for line in installs), installs
    assert not [line for line in installs if "-r requirements.txt" in line or "RUNTIME_REQS" in line]
    assert "HERE_REQS := $(VENV)/requirements-here.txt" in makefile_recipes()


def adapted_requirements(tmp_path: Path, index_serves_cpu_build: bool) -> tuple[Path, list[str]]:
    """Run the Makefile's rule for ``$(HERE_REQS)`` with a stand-in Python whose pip says whether the configured index
    serves ``torch==2.13.0+cpu``; return the file it wrote and the pip commands it ran."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit {0 if index_serves_cpu_build else 1}\n')
    python.chmod(0o755)
    target = venv / "requirements-here.txt"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
    subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), f"VENV={venv}", str(target)],
                   check=True, capture_output=True, text=True, env=env, timeout=60)
    return target, calls.read_text().splitlines() if calls.exists() else []


def test_where_the_index_serves_the_cpu_build_make_pins_it_in_place_of_the_urls(tmp_path):
    """This project's machines: their mirror serves ``torch==2.13.0+cpu`` and download.pytorch.org is unreachable
    (pip would spend about 8 s retrying it, then fail)."""
    adapted, calls = adapted_requirements(tmp_path, index_serves_cpu_build=True)
    assert calls == [f"-m pip install --quiet --dry-run --no-deps torch=={TORCH}+cpu"]
    for platform in ("linux-x86_64", "linux-aarch64"):
        for python in ["3.10", *CLOUD_PYTHONS]:
            (found,) = torch_lines(platform, python, adapted)
            assert found.url is None and str(found.specifier) == f"=={TORCH}+cpu"
    (found,) = torch_lines("macos-arm64", "3.11", adapted)
    assert str(found.specifier) == f"=={TORCH}"
    assert not [req for req in requirements(adapted) if req.url]  # nothing left to fetch from download.pytorch.org
    original = REQUIREMENTS.read_text().splitlines()
    changed = [(old, new) for old, new in zip(original, adapted.read_text().splitlines()) if old != new]
    assert len(adapted.read_text().splitlines()) == len(original)
    assert changed and all(old.startswith("torch @ ") and new.startswith("torch==") for old, new in changed)
    assert all(old.split(" ; ")[1] == new.split(" ; ")[1] for old, new in changed)  # markers kept


def test_elsewhere_make_installs_requirements_txt_as_it_is(tmp_path):
    """An ordinary machine: PyPI has no ``+cpu`` build, so the direct URLs stay."""
    adapted, calls = adapted_requirements(tmp_path, index_serves_cpu_build=False)
    assert len(calls) == 1 and adapted.read_text() == REQUIREMENTS.read_text()
