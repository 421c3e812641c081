"""The packages pyproject.toml describes, plus the shipped data: `resources/` is installed as the
package `atelier_resources` (every file in it), which `engine.paths` finds in an installed wheel."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["engine", "engine.*", "studio", "studio.*"]), "atelier_resources"],
    package_dir={"atelier_resources": "resources"},
    package_data={"atelier_resources": ["**/*"]},
    include_package_data=False,  # package_data alone: MANIFEST.in-style discovery warns on data folders
    exclude_package_data={"atelier_resources": ["**/__pycache__/*", "**/*.pyc"]},
)
