"""Map the fixed top-level folders under one import namespace, ``kyoten``.

``agent/`` installs as ``kyoten.agent``, ``alerting/`` as ``kyoten.alerting``, ``hardware/`` as
``kyoten.hardware``, ``shell/`` as ``kyoten.shell`` and ``common/`` as ``kyoten.common``, so
nothing lands in site-packages under a bare generic name. The package list is computed from the
folders, so a new subpackage can never be left out of the wheel.
"""

from setuptools import find_packages, setup

ROOTS = {
    "agent": "kyoten.agent",
    "alerting": "kyoten.alerting",
    "hardware": "kyoten.hardware",
    "shell": "kyoten.shell",
    "common": "kyoten.common",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder, name in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(folder))

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: ["py.typed"] for name in ROOTS.values()},
)
