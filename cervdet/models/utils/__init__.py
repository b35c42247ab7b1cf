from .frozen_teacher import (
    FrozenTeacherMixin,
    build_teacher,
    build_teacher_model_cfg,
    load_teacher_checkpoint,
    resolve_config_path,
)
from .normalization import (
    InputNormalization,
    convert_normalization,
    normalization_transfer,
    preprocessor_normalization,
    same_normalization,
    transfer_normalization,
)
from .pooling import pool_backbone_output
from .shape_checks import check_same_2d

__all__ = [
    'FrozenTeacherMixin', 'build_teacher', 'build_teacher_model_cfg',
    'load_teacher_checkpoint', 'resolve_config_path', 'InputNormalization',
    'convert_normalization', 'normalization_transfer',
    'preprocessor_normalization', 'same_normalization',
    'transfer_normalization', 'pool_backbone_output', 'check_same_2d'
]
