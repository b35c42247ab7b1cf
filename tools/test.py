"""Test (and evaluate) a detector: COCO AP/AR and a per-class AP table.

Same flags as MMDetection 3.3's ``tools/test.py``. ``--out`` refuses to
replace an existing file (pass ``--force-overwrite``); at the end a summary
of the metrics is printed as one table. Unlike MMDetection's tool:

- the checkpoint is loaded strictly: one of another architecture (other
  backbone, detector or number of classes) stops with the missing /
  unexpected keys and shapes instead of testing random weights;
- everything the test writes (log, metrics, its config copy with the
  test-time options) goes to ``<work_dir>/<timestamp>/``: the training's
  config copy ``<work_dir>/<config>.py`` is never rewritten.
"""
import argparse
import gc
import os
import os.path as osp
import sys
import warnings
from copy import deepcopy

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine import ConfigDict  # noqa: E402

from cervdet.utils.dist import shutdown_dist  # noqa: E402
from cervdet.utils.launch import (  # noqa: E402
    USER_ERRORS,
    add_launch_args,
    build_runner,
    load_config,
    local_rank_env,
)
from cervdet.utils.registry_hints import registry_hints  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='directory for the log and metrics of this test')
    parser.add_argument(
        '--out', type=str, help='dump predictions to a .pkl file')
    parser.add_argument(
        '--force-overwrite',
        action='store_true',
        help='let --out replace an existing file')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='save images with ground truth (left) and predictions (right) '
        'to work_dir/<timestamp>/<show-dir>')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    add_launch_args(parser)
    parser.add_argument('--tta', action='store_true')
    args = parser.parse_args(argv)
    local_rank_env(args.local_rank)
    return args


def _add_tta(cfg) -> None:
    if 'tta_model' not in cfg:
        warnings.warn('no tta_model in the config: using flip TTA')
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    if 'tta_pipeline' not in cfg:
        test_data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in test_data_cfg:
            test_data_cfg = test_data_cfg['dataset']
        cfg.tta_pipeline = deepcopy(test_data_cfg.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[
                dict(type='RandomFlip', prob=1.),
                dict(type='RandomFlip', prob=0.)
            ], [
                dict(
                    type='PackDetInputs',
                    meta_keys=('img_id', 'img_path', 'ori_shape',
                               'img_shape', 'scale_factor', 'flip',
                               'flip_direction'))
            ]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def format_summary(metrics: dict) -> str:
    """One table of the COCO summary metrics (AP in %, as in papers)."""
    names = [('AP', 'bbox_mAP'), ('AP50', 'bbox_mAP_50'),
             ('AP75', 'bbox_mAP_75'), ('APs', 'bbox_mAP_s'),
             ('APm', 'bbox_mAP_m'), ('APl', 'bbox_mAP_l'),
             ('AR@100', 'bbox_AR@100')]
    keys = {k.split('/')[-1]: v for k, v in metrics.items()}
    cols = [(n, keys[k]) for n, k in names if k in keys]
    if not cols:
        return ''
    head = ' | '.join(f'{n:>6}' for n, _ in cols)
    vals = ' | '.join(
        f'{100 * v:6.1f}' if v >= 0 else f'{"n/a":>6}' for _, v in cols)
    return f'{head}\n{vals}'


def _has_coco_metric(cfg) -> bool:
    evaluators = cfg.get('test_evaluator', [])
    if not isinstance(evaluators, (list, tuple)):
        evaluators = [evaluators]
    return any(e.get('type') == 'CocoMetric' for e in evaluators)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        sys.exit(f'checkpoint not found: {args.checkpoint}')
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            sys.exit(f'--out {args.out}: the dump file must end in .pkl')
        if osp.exists(args.out) and not args.force_overwrite:
            sys.exit(f'--out {args.out} exists: choose another file or pass '
                     '--force-overwrite.')
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    # CervdetRunner: refuse a checkpoint of another architecture, and keep
    # this test's config copy in its own log folder.
    cfg.strict_load = True
    cfg.dump_config_in_log_dir = True

    if args.show or args.show_dir:
        from mmdet.engine.hooks.utils import trigger_visualization_hook
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        _add_tta(cfg)

    try:
        with registry_hints():
            runner = build_runner(cfg)
            if args.out is not None:
                from mmdet.evaluation import DumpDetResults
                os.makedirs(osp.dirname(osp.abspath(args.out)),
                            exist_ok=True)
                runner.test_evaluator.metrics.append(
                    DumpDetResults(out_file_path=args.out))
            if not hasattr(runner, 'check_checkpoint_fits'):
                # another runner_type: check here what CervdetRunner checks
                from cervdet.utils.checkpoint_files import check_checkpoint_fits
                check_checkpoint_fits(runner.model, args.checkpoint,
                                      args.config)
            metrics = runner.test()
    except USER_ERRORS as e:
        sys.exit(f'{type(e).__name__}: {e}')
    if runner.rank == 0:
        summary = format_summary(metrics or {})
        if summary:
            print(f'\nCOCO bbox summary ({osp.basename(args.config)}):\n'
                  f'{summary}', flush=True)
        elif _has_coco_metric(cfg):
            thr = cfg.model.get('test_cfg', {}).get('score_thr', None)
            print('\nNo COCO metrics: the model kept no detection on any '
                  f'test image (model.test_cfg.score_thr={thr}), so there is '
                  'nothing to score (AP 0). An untrained or barely trained '
                  'model scores below the threshold: check the checkpoint, '
                  'or add --cfg-options model.test_cfg.score_thr=0.0.',
                  flush=True)
    # Drop the runner (its DDP wrapper and any gloo work it still holds)
    # while the process group is alive: tensors of pending gloo work
    # destroyed at interpreter finalisation can abort a rank at exit.
    del runner
    gc.collect()
    # Only after success: a rank that failed must not wait at a barrier.
    shutdown_dist()
    return metrics


if __name__ == '__main__':
    main()
