"""Setup for deocc: reads every setting from settings.ini (nbdev 2 style, no pkg_resources)."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

here = Path(__file__).parent
config = ConfigParser(delimiters=["="])
config.read(here / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
licenses = {"apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License")}
lic = licenses[cfg["license"]]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=lic[0],
    classifiers=["Programming Language :: Python :: 3", "License :: " + lic[1]],
    keywords=cfg["keywords"],
    url=cfg["git_url"],
    packages=setuptools.find_packages(include=["deocc", "deocc.*"]),
    include_package_data=True,
    package_data={"deocc": ["weights/*/*.json", "weights/*/*.safetensors", "weights/*/LICENSE*", "assets/occluders/*.png", "assets/occluders/*.json", "assets/occluders/LICENSE*", "assets/occluders/ATTRIBUTION*"]},
    install_requires=requirements,
    extras_require={"dev": dev_requirements},
    python_requires=">=" + cfg["min_python"],
    zip_safe=False,
    entry_points={"console_scripts": cfg["console_scripts"].split(), "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
