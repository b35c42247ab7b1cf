from .fgd_distill_hook import (FGDDistillHook, fgd_schedule_weight,
                               student_checkpoint)

__all__ = ['FGDDistillHook', 'fgd_schedule_weight', 'student_checkpoint']
