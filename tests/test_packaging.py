"""environment.yml (conda, Binder) and pyproject.toml name the same runtime packages."""

import re

import tomllib
import yaml
from conftest import REPO

CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_name_the_same_runtime_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pypi = {_name(r) for r in project["dependencies"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(r) for r in dep["pip"]}
        else:
            conda.add(CONDA_TO_PYPI.get(_name(dep), _name(dep)))
    conda -= {"python", "pip"}
    assert conda | pip == pypi
    assert not conda & pip


def test_torch_is_pinned_to_the_cpu_wheel_release():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
