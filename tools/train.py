"""Train a detector (or any cervdet model) from a config.

Same flags as MMDetection 3.3's ``tools/train.py``. Differences:
- cervdet is imported, and configs without ``runner_type`` use
  ``CervdetRunner`` (device-agnostic distributed training: gloo on CPUs);
- ``--amp`` on a machine without an AMP-capable device stops with a clear
  error instead of a deep assertion;
- a work dir that already holds checkpoints is not trained into again unless
  ``--resume`` (continue) or ``--force-overwrite`` is given, so no saved
  checkpoint is silently replaced;
- ``--resume`` continues from the newest complete checkpoint of the work dir
  itself and stops when there is none; a work dir in use by another
  training is refused (see docs/reliability.md);
- errors of the input (unknown type names, data that does not match its
  annotations, a busy work dir) end with one message, not a traceback.
"""
import argparse
import gc
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


from cervdet.utils.dist import shutdown_dist  # noqa: E402
from cervdet.utils.launch import (  # noqa: E402
    USER_ERRORS,
    add_launch_args,
    amp_available,
    build_runner,
    existing_checkpoints,
    load_config,
    local_rank_env,
)
from cervdet.utils.registry_hints import registry_hints  # noqa: E402
from cervdet.utils.work_dir_lock import held_message, lock_state, read_lock  # noqa


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (CUDA/NPU/MLU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint in the work directory')
    parser.add_argument(
        '--force-overwrite',
        action='store_true',
        help='train into a work dir that already holds checkpoints '
        '(they may be overwritten)')
    add_launch_args(parser)
    args = parser.parse_args(argv)
    local_rank_env(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)

    if args.amp:
        if not amp_available():
            sys.exit('--amp needs a CUDA (or NPU/MLU/MUSA) device and this '
                     'machine has none: train without --amp.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            sys.exit('--auto-scale-lr: the config has no '
                     'auto_scale_lr.base_batch_size.')

    owner = read_lock(cfg.work_dir)
    if lock_state(owner) == 'held':
        sys.exit(held_message(cfg.work_dir, owner))

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            sys.exit(f'--resume {args.resume}: no such checkpoint file.')
        cfg.resume = True
        cfg.load_from = args.resume
    elif not args.force_overwrite:
        previous = existing_checkpoints(cfg.work_dir)
        if previous:
            sys.exit(
                f'work dir {cfg.work_dir} already holds checkpoints '
                f'({", ".join(osp.basename(p) for p in previous[:3])}'
                f'{", ..." if len(previous) > 3 else ""}). Pass --resume to '
                'continue that run, --work-dir for a new one, or '
                '--force-overwrite to train over it.')

    try:
        with registry_hints():
            runner = build_runner(cfg)
            runner.train()
    except USER_ERRORS as e:
        sys.exit(f'{type(e).__name__}: {e}')
    # Drop the runner (its DDP wrapper and any gloo work it still holds)
    # while the process group is alive: tensors of pending gloo work
    # destroyed at interpreter finalisation can abort a rank at exit.
    del runner
    gc.collect()
    # Only after success: a rank that failed must not wait at a barrier.
    shutdown_dist()


if __name__ == '__main__':
    main()
