"""The package, the tests, the tools and the benchmarks pass isort and flake8
with setup.cfg's settings (the check of .pre-commit-config.yaml, run here so
that CI runs it)."""
import subprocess
import sys

import pytest

from conftest import ROOT

#: what .pre-commit-config.yaml checks
PATHS = ['cervdet', 'tests', 'tools', 'benchmarks']


def _run(module, *args):
    return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT,
                          capture_output=True, text=True)


@pytest.mark.parametrize('tool', ['isort', 'flake8'])
def test_package_and_tests_pass_the_linters(tool):
    if tool == 'isort':
        proc = _run('isort', '--check-only', '--diff', *PATHS)
    else:
        proc = _run('flake8', *PATHS)
    assert proc.returncode == 0, (
        f'{tool} fails (fix: python -m {tool} ... or pre-commit run '
        f'--all-files):\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}')
