from .fgd_distiller import FGDDistiller, extract_student_state_dict
from .pcn_retinanet import PCNRetinaNet

__all__ = ['PCNRetinaNet', 'FGDDistiller', 'extract_student_state_dict']
