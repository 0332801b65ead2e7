"""The distribution: a clean build prints no setuptools warning, and the wheel installed into a
fresh virtual environment outside the repository carries the specs, the cluster examples,
the type markers and the licence, installs one top-level name (``insitu``), and keeps
working beside another distribution that owns a top-level ``sweeps`` or ``analysis``.

Offline: the wheel is built without build isolation by this environment's setuptools (the
test extras require a recent one), then installed without dependencies and without an index.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
from email.parser import Parser
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = (".git", ".venv", "results", "build", "*.egg-info", "__pycache__", ".pytest_cache",
              ".hypothesis", "*.pyc")
SETUPTOOLS_WARNINGS = re.compile(r"BuildBackendWarning|SetuptoolsDeprecationWarning|"
                                 r"SetuptoolsWarning|absent from the .packages. configuration|"
                                 r"Package would be ignored")


def test_clean_install_ships_specs_cluster_examples_and_markers(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=600)
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-3000:]
    assert not SETUPTOOLS_WARNINGS.search(output), SETUPTOOLS_WARNINGS.search(output).group(0)
    (wheel,) = (tmp_path / "dist").glob("insitu-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())

    cluster = sorted(p.name for p in (site / "insitu" / "sweeps" / "cluster").iterdir())
    assert cluster == sorted(p.name for p in (ROOT / "sweeps" / "cluster").iterdir())
    specs = sorted(p.name for p in (site / "insitu" / "sweeps" / "specs").glob("*.toml"))
    assert specs == sorted(p.name for p in (ROOT / "sweeps" / "specs").glob("*.toml"))
    for package in ("photonics", "sweeps", "analysis"):
        assert (site / "insitu" / package / "py.typed").is_file()
    for room in ("store", "engine", "experiments", "app"):
        assert (site / "insitu" / "sweeps" / room / "__init__.py").is_file(), room
    assert (env_dir / "bin" / "insitu").is_file()

    (dist_info,) = site.glob("insitu-*.dist-info")
    meta = Parser().parsestr((dist_info / "METADATA").read_text())
    assert meta["License-Expression"] == "MIT"
    assert (dist_info / "licenses" / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert any(url.startswith("Homepage, ") for url in meta.get_all("Project-URL"))
    assert "Typing :: Typed" in meta.get_all("Classifier")
    # one top-level name: nothing of the repository beyond the insitu package
    ours = {p.name for p in site.iterdir() if p.name.startswith("insitu")}
    assert ours == {"insitu", dist_info.name}
    assert not {p.name for p in site.iterdir()} & {"photonics", "sweeps", "analysis", "tests", "benchmarks"}

    # another distribution owning a top-level sweeps (W&B's, say) and analysis changes nothing;
    # the dependencies come from this environment (a path entry: its own .pth files, the
    # editable install of the repository among them, are not processed)
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps-of-the-test.pth").write_text("\n".join(deps) + "\n")
    for name in ("sweeps", "analysis"):
        (site / name).mkdir()
        (site / name / "__init__.py").write_text("raise ImportError('not insitu')\n")
    version = subprocess.run([str(env_dir / "bin" / "insitu"), "--version"], capture_output=True,
                             text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("insitu "), version.stderr
    module = subprocess.run([str(python), "-m", "insitu", "--version"], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert module.returncode == 0 and module.stdout.startswith("insitu "), module.stderr
