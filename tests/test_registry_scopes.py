"""Which registry scope every cervdet module registers in.

cervdet registers straight into the libraries' registries: detection parts
in ``mmdet``, classifier parts (ROI and slide classifiers, DINO, k-NN) in
``mmpretrain``, the runner in MMEngine's root. The table below is the layout
as it is: one scope per folder, with the files of a mixed folder that use the
other scope listed one by one. A module registering in another scope, a new
folder missing from the table, or a stale table entry makes this test fail;
update the table (and docs/architecture.md) when a module is meant to move.
"""
from collections import defaultdict
from typing import Dict, Iterator, List, Tuple

import mmdet.registry  # noqa: F401  (creates the mmdet child registries)
import mmengine.registry as root
import mmpretrain.registry  # noqa: F401  (creates the mmpretrain children)

import cervdet  # noqa: F401  (runs every register_module decorator)

#: Folder (package) -> scope of the classes its files register.
FOLDER_SCOPES: Dict[str, str] = {
    'cervdet.datasets': 'mmdet',
    'cervdet.datasets.transforms': 'mmpretrain',
    'cervdet.engine.hooks': 'mmdet',
    'cervdet.engine.runner': 'mmengine',
    'cervdet.evaluation.metrics': 'mmpretrain',
    'cervdet.models.classifiers': 'mmpretrain',
    'cervdet.models.dense_heads': 'mmdet',
    'cervdet.models.detectors': 'mmdet',
    'cervdet.models.heads': 'mmpretrain',
    'cervdet.models.layers': 'mmpretrain',
    'cervdet.models.losses': 'mmdet',
    'cervdet.models.roi_heads': 'mmdet',
    'cervdet.models.roi_heads.roi_extractors': 'mmdet',
    'cervdet.models.selfsup': 'mmpretrain',
    'cervdet.models.slide_aggregators': 'mmpretrain',
    'cervdet.models.task_modules.prior_generators': 'mmdet',
}

#: Files of a mixed folder whose classes use the other scope.
FILE_SCOPES: Dict[str, str] = {
    # ROI / slide bag datasets feed the mmpretrain classifiers
    'cervdet.datasets.roi_bag_dataset': 'mmpretrain',
    'cervdet.datasets.slide_bag_dataset': 'mmpretrain',
    # DINO pre-training runs in mmpretrain's scope
    'cervdet.engine.hooks.dino_freeze_last_layer_hook': 'mmpretrain',
    'cervdet.models.losses.dino_loss': 'mmpretrain',
    # detection metrics
    'cervdet.evaluation.metrics.corloc_metric': 'mmdet',
    'cervdet.evaluation.metrics.iou_range_coco_metric': 'mmdet',
    'cervdet.evaluation.metrics.point_hit_metric': 'mmdet',
    # parts of the dual-alignment Faster R-CNN (semi-supervised detection)
    'cervdet.models.layers.metric_projection_head': 'mmdet',
    'cervdet.models.layers.prototype_memory_bank': 'mmdet',
}


def _all_registries() -> Iterator[root.Registry]:
    """Every registry below MMEngine's root registries (all scopes)."""
    todo: List[root.Registry] = [
        r for r in vars(root).values() if isinstance(r, root.Registry)]
    seen = set()
    while todo:
        reg = todo.pop()
        if id(reg) in seen:
            continue
        seen.add(id(reg))
        yield reg
        todo.extend(reg.children.values())


def _cervdet_registrations() -> Dict[str, List[Tuple[str, str, str]]]:
    """Module of each cervdet class -> ``(scope, registry, name)`` list."""
    out = defaultdict(list)
    for reg in _all_registries():
        for name, obj in reg.module_dict.items():
            module = getattr(obj, '__module__', '') or ''
            if module == 'cervdet' or module.startswith('cervdet.'):
                out[module].append((reg.scope, reg.name, name))
    return out


def _expected_scope(module: str) -> str:
    if module in FILE_SCOPES:
        return FILE_SCOPES[module]
    folder = module.rsplit('.', 1)[0]
    assert folder in FOLDER_SCOPES, (
        f'{module} registers classes but its folder {folder} is not in '
        'FOLDER_SCOPES: add it (one scope per folder)')
    return FOLDER_SCOPES[folder]


def test_every_cervdet_class_registers_in_its_folders_scope():
    registrations = _cervdet_registrations()
    assert len(registrations) >= 40  # the walk found cervdet's modules
    wrong = []
    for module, regs in sorted(registrations.items()):
        expected = _expected_scope(module)
        wrong += [f'{module}: {name} in {scope}.{reg}, expected {expected}'
                  for scope, reg, name in regs if scope != expected]
    assert not wrong, '\n'.join(wrong)


def test_table_has_no_stale_entries():
    modules = set(_cervdet_registrations())
    folders = {m.rsplit('.', 1)[0] for m in modules}
    assert set(FOLDER_SCOPES) == folders
    assert set(FILE_SCOPES) <= modules
    for module, scope in FILE_SCOPES.items():  # exceptions are exceptions
        assert scope != FOLDER_SCOPES[module.rsplit('.', 1)[0]], module


def test_a_wrong_scope_is_caught():
    """The check fails when a module registers in the other scope."""
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS

    class _Misplaced:
        pass

    _Misplaced.__module__ = 'cervdet.models.losses.misplaced_loss'
    name = '_CervdetMisplacedLossForTest'
    PRETRAIN_MODELS.register_module(name=name, module=_Misplaced)
    try:
        regs = _cervdet_registrations()['cervdet.models.losses.misplaced_loss']
        assert regs == [('mmpretrain', 'model', name)]
        assert _expected_scope('cervdet.models.losses.misplaced_loss') != \
            regs[0][0]
    finally:
        PRETRAIN_MODELS._module_dict.pop(name)
    assert name not in DET_MODELS.module_dict
