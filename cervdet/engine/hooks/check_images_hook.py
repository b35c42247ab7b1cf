"""Check the image files of every data set of a run before it starts."""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop

from cervdet.datasets.image_checks import check_dataset_images


@HOOKS.register_module()
class CheckImagesHook(Hook):
    """Header-only check of the train, val and test images at ``before_run``.

    A corrupt val image otherwise stops the run only at the first
    validation, after a full training epoch; an image whose size differs
    from its annotation trains with an infinite box loss. The check opens
    each file's header (about 1 ms per image) and raises
    :class:`~cervdet.datasets.image_checks.ImageHeaderError` naming the
    files, their sizes and the fix. ``CervdetRunner`` adds it to every run;
    the loops built at that point are checked (train and val for
    ``runner.train()``, test for ``runner.test()``).

    Args:
        splits (tuple[str]): Loops to check. Defaults to all three.
    """

    priority = 'VERY_HIGH'

    def __init__(self, splits=('train', 'val', 'test')) -> None:
        self.splits = tuple(splits)
        self._checked = set()

    def before_run(self, runner) -> None:
        for split in self.splits:
            loop = getattr(runner, f'_{split}_loop', None)
            if not isinstance(loop, BaseLoop):
                continue  # not built for this run
            dataset = getattr(loop.dataloader, 'dataset', None)
            if dataset is None or id(dataset) in self._checked:
                continue
            n = check_dataset_images(dataset, split=split)
            self._checked.add(id(dataset))
            if n:
                print_log(f'checked the headers of the {n} {split} images: '
                          'all readable, sizes as annotated',
                          logger='current')


__all__ = ['CheckImagesHook']
