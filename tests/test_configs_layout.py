"""Config layout: every runnable config is at most 3 ``_base_`` hops deep
(``mmdet::``/``mmpretrain::`` bases not counted), so that it composes model /
dataset / schedule bases instead of chains of configs inheriting configs
(issue 16 item 6).
"""
import ast
from pathlib import Path

from conftest import ROOT

CONFIG_DIR = ROOT / 'configs'
CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py')
                 if '_base_' not in p.parts)
MAX_HOPS = 3


def _bases(path: Path) -> list:
    """The local files of a config's ``_base_`` (read, not executed)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            names = [value] if isinstance(value, str) else list(value)
            return [(path.parent / n).resolve() for n in names
                    if '::' not in n]
    return []


def hops(path: Path) -> int:
    """Length of the longest chain of local ``_base_`` files above a config."""
    bases = _bases(path)
    return 1 + max(hops(b) for b in bases) if bases else 0


def test_hops_counts_a_chain(tmp_path):
    (tmp_path / 'a.py').write_text("_base_ = ['mmdet::x.py']\n")
    (tmp_path / 'b.py').write_text("_base_ = './a.py'\n")
    (tmp_path / 'c.py').write_text("_base_ = ['./b.py', './a.py']\n")
    assert [hops(tmp_path / f'{n}.py') for n in 'abc'] == [0, 1, 2]


def test_runnable_configs_are_at_most_three_hops_deep():
    assert len(CONFIGS) > 100
    deep = {str(p.relative_to(CONFIG_DIR)): hops(p) for p in CONFIGS
            if hops(p) > MAX_HOPS}
    assert not deep, deep
