"""k-NN probing of frozen backbone features on labeled cell-crop sets.

The logic of ``tools/ssl/knn_eval.py`` (its command line is in that file).

The protocol of Stegmüller et al. (ISBI 2023) with DINO's weighted k-NN
(``cervdet/evaluation/metrics/knn_metric.py``): pooled features of every crop
of a folder-per-class set, cosine similarity, vote weights ``exp(sim / T)``
with ``T = 0.07``, ``k`` from ``--topk`` (DINO's 10, 20, 100, 200; the
table shows the ``k`` of the best weighted F1, as the paper does); weighted
and class-wise F1 as mean +- std over ``--num-splits`` (4, the paper's "4
independent runs", Sec. 3.1) random stratified 75/25 splits. The paper's
runs also differ in their DINO model (one per stratified slide split):
``--runs NAME=BACKBONE,CKPT1,...,CKPT4`` pairs run ``s`` with split ``s`` and
model ``s``.

Protocols, for every feature source ("row") and every ``--data`` set:

* ``multi-class``: the set's own classes;
* ``binary``: negative / positive labels from :data:`BINARY_TABLES` (the
  k-NN is fitted on the binary labels);
* ``transfer A->B`` (``--transfer A:B``, ours): fitted on the binary labels
  of the train part of each split of A, tested on the test part of the same
  split of B (the samples the ``binary`` protocol of B tests on), so the
  numbers compare directly with B's within-set binary row;
* ``whole A+B->C`` (``--transfer-whole A+B:C``, the paper's Table 3): the
  k-NN is fitted on *every* sample of the source set(s) (``+`` joins sets,
  H+S) with binary labels and classifies every *positive* of the target;
  the sensitivity is reported (plus, ours, the specificity on the target's
  negatives when it has any). No split: mean +- std is over the models of
  a ``--runs`` row (one model gives std 0). The table shows the k with the
  best weighted F1 of the source's own binary k-NN (``--whole-k source``,
  our reading of "k ... maximizes the weighted F1": on a positives-only
  target that F1 only restates the sensitivity, and the largest k, voting
  the source's majority class, would always win); ``--whole-k target``
  shows the best sensitivity instead. The JSON has every k.

Binary mapping (:data:`BINARY_TABLES`; a set is matched by its class
folders, or give ``--negative NAME=cls1,cls2`` for another set):

=========  ===========================================  ============================
set        negative                                     positive
=========  ===========================================  ============================
herlev     normal_superficiel, normal_intermediate,     light_dysplastic,
           normal_columnar                              moderate_dysplastic,
                                                        severe_dysplastic,
                                                        carcinoma_in_situ
bethesda   NILM                                         ASC-US, ASC-H, LSIL, HSIL,
                                                        SCC
=========  ===========================================  ============================

Feature sources: ``--backbone`` is a preset (:data:`PRESETS`) or a config
whose ``model.backbone`` is built (``--backbone-key`` for another
attribute); ``--checkpoint`` (repeatable, one row each) is a
``tools/ssl/convert_backbone.py`` output
(:mod:`cervdet.utils.backbone_convert`) or any MMEngine checkpoint
(``--checkpoint-prefix``; by default the prefix is found: none, the DINO
teacher's, then the student's); ``--random-init`` adds a random row;
``--row NAME=BACKBONE[,CKPT]`` adds any other (e.g. ImageNet weights you
have as a file). Command line and examples: ``tools/ssl/knn_eval.py``.

One module (over 500 lines): data, backbones, features, protocols and the
report are one pipeline; the k-NN math is
:mod:`cervdet.evaluation.metrics.knn_metric`.
"""
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..datasets.classes import (
    BETHESDA_CLASSES,
    HERLEV_ABNORMAL,
    HERLEV_NORMAL,
    NORMAL_CLASS,
)
from ..models.utils import pool_backbone_output
from ..utils.backbone_convert import (
    DEFAULT_SRC_PREFIXES,
    check_load,
    key_prefixes,
    load_state_dict,
    strip_pretrained,
)
from ..utils.constants import IMAGENET_MEAN, IMAGENET_STD, IMG_EXTS
from .metrics.knn_metric import (
    best_k,
    binary_labels,
    knn_evaluate,
    knn_transfer_sensitivity,
)

#: Backbone presets (mmpretrain types; no pretrained weights are fetched).
PRESETS: Dict[str, Dict] = {
    'resnet18': dict(type='ResNet', depth=18),
    'resnet18-w32': dict(type='ResNet', depth=18, stem_channels=32,
                         base_channels=32),
    'resnet50': dict(type='ResNet', depth=50),
    'vit-small-p16': dict(type='VisionTransformer', arch='deit-small',
                          patch_size=16, img_size=224, out_type='cls_token'),
}
#: Binary (negative, positive) class tables of the known crop sets.
BINARY_TABLES: Dict[str, Dict[str, Tuple[str, ...]]] = {
    'herlev': dict(negative=HERLEV_NORMAL, positive=HERLEV_ABNORMAL),
    'bethesda': dict(negative=(NORMAL_CLASS, ), positive=BETHESDA_CLASSES),
}
_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
_STD = np.array(IMAGENET_STD, dtype=np.float32)


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
def list_crop_set(root: Path) -> Tuple[List[str], List[Path], np.ndarray]:
    """Classes (sorted sub-folders), image files and labels of a set."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'--data folder {root} not found')
    classes, files, labels = [], [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        imgs = sorted(f for f in sub.iterdir()
                      if f.suffix.lower() in IMG_EXTS)
        if not imgs:
            continue
        labels += [len(classes)] * len(imgs)
        classes.append(sub.name)
        files += imgs
    if len(classes) < 2:
        raise ValueError(f'{root} needs >= 2 class sub-folders with images '
                         f'(folder-per-class layout), found {classes}')
    return classes, files, np.array(labels, dtype=np.int64)


def negative_classes(name: str, classes: Sequence[str],
                     overrides: Dict[str, Sequence[str]]
                     ) -> Optional[Tuple[str, ...]]:
    """Negative classes of a set (``None`` when no mapping is known)."""
    if name in overrides:
        neg = tuple(overrides[name])
        bad = [c for c in neg if c not in classes]
        if bad:
            raise ValueError(f'--negative {name}: {bad} are not classes of '
                             f'the set ({list(classes)})')
        return neg
    for table in BINARY_TABLES.values():
        if set(classes) == set(table['negative']) | set(table['positive']):
            return table['negative']
    return None


def load_images(files: Sequence[Path], size: int,
                progress: bool = True) -> np.ndarray:
    """RGB uint8 images resized to ``size x size``: ``[N, size, size, 3]``."""
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    for i, f in enumerate(tqdm(files, desc='read', unit='img',
                               disable=not progress, leave=False)):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'cannot read image {f}')
        interp = (cv2.INTER_AREA if max(img.shape[:2]) > size
                  else cv2.INTER_LINEAR)
        out[i] = cv2.resize(img, (size, size), interpolation=interp)[..., ::-1]
    return out


# ----------------------------------------------------------------------------
# Backbones
# ----------------------------------------------------------------------------
def build_backbone(spec: str, checkpoint: Optional[str] = None,
                   checkpoint_prefix: Optional[str] = None,
                   backbone_key: str = 'model.backbone',
                   seed: int = 0) -> torch.nn.Module:
    """A backbone from a preset or config, optionally with weights.

    Pretrained ``init_cfg`` entries of a config are dropped (nothing is
    downloaded); weights come from ``checkpoint`` only.
    """
    from mmengine.config import Config, ConfigDict
    from mmengine.logging import MMLogger
    from mmengine.registry import MODELS, DefaultScope
    if spec in PRESETS:
        cfg, scope = ConfigDict(PRESETS[spec]), 'mmpretrain'
    elif Path(spec).is_file():
        full = Config.fromfile(spec)
        cfg = full
        for part in backbone_key.split('.'):
            cfg = cfg.get(part) if hasattr(cfg, 'get') else None
            if cfg is None:
                raise KeyError(f'{spec} has no {backbone_key}: pass '
                               '--backbone-key')
        scope = full.get('default_scope', 'mmpretrain')
        cfg = ConfigDict(cfg)
    else:
        raise ValueError(f'--backbone {spec!r} is neither a preset '
                         f'({list(PRESETS)}) nor a config file')
    strip_pretrained(cfg)
    if MMLogger.check_instance_created('cervdet_knn_eval'):  # quiet logs
        MMLogger.get_instance('cervdet_knn_eval')
    else:
        MMLogger.get_instance('cervdet_knn_eval', log_level='WARNING')
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg)
    if hasattr(model, 'init_weights'):
        model.init_weights()
    if checkpoint:
        state = load_state_dict(Path(checkpoint))
        own = set(model.state_dict())
        if checkpoint_prefix is not None:
            prefixes: Sequence[str] = (checkpoint_prefix, )
        else:
            prefixes = ('', ) + DEFAULT_SRC_PREFIXES['teacher'] + \
                DEFAULT_SRC_PREFIXES['student']
        chosen = None
        for p in prefixes:
            sub = {k[len(p):]: v for k, v in state.items() if k.startswith(p)}
            if sub and own <= set(sub):
                chosen = sub
                break
        if chosen is None:
            raise KeyError(
                f'{checkpoint} has no key set that covers the {spec} '
                f'backbone under the prefixes {list(prefixes)}; its prefixes '
                f'are {key_prefixes(list(state))}: pass --checkpoint-prefix '
                '(or convert it with tools/ssl/convert_backbone.py)')
        report = check_load(model, chosen)
        if any(report.values()):
            raise ValueError(f'{checkpoint} does not fit {spec}: '
                             + '; '.join(f'{k}: {v[:5]}' for k, v in
                                         report.items() if v))
    model.eval()  # (mmpretrain's ResNet.train returns None)
    return model


@torch.no_grad()
def extract_features(model: torch.nn.Module, images: np.ndarray,
                     batch_size: int = 64, progress: bool = True,
                     desc: str = 'features') -> torch.Tensor:
    """Pooled features of ``images`` (RGB uint8 [N, S, S, 3]): [N, C].

    ImageNet mean/std on RGB; the last backbone stage pooled by
    :func:`cervdet.models.selfsup.pool_backbone_output` (the DINO model's
    own pooling).
    """
    feats = []
    for start in tqdm(range(0, len(images), batch_size), desc=desc,
                      unit='batch', disable=not progress, leave=False):
        batch = (images[start:start + batch_size].astype(np.float32) -
                 _MEAN) / _STD
        x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        feats.append(pool_backbone_output(model(x)).float())
    return torch.cat(feats)


# ----------------------------------------------------------------------------
# Protocols and report
# ----------------------------------------------------------------------------
def evaluate_row(feats: Sequence[Dict[str, torch.Tensor]],
                 sets: Dict[str, Dict],
                 transfers: Sequence[Tuple[str, str]], topk: Sequence[int],
                 T: float, num_splits: int, seed: int,
                 whole: Sequence[Tuple[Sequence[str], str]] = ()
                 ) -> List[Dict]:
    """All protocols of one feature source; one result dict per (data,
    protocol, k).

    Args:
        feats (Sequence[dict]): Per run (model), ``{set name: Tensor[N, C]}``;
            with several runs, run ``s`` is evaluated on split ``s`` and
            ``num_splits`` is the number of runs.
        whole (Sequence[tuple]): ``(source sets, target set)`` of the
            paper's whole-set transfer (Table 3).
    """
    multi = len(feats) > 1
    kw = dict(topk=topk, T=T, num_splits=len(feats) if multi else num_splits,
              seed=seed)

    def of(name):
        return [f[name] for f in feats] if multi else feats[0][name]

    out = []

    def add(data, protocol, res, classes):
        for k, r in res.items():
            out.append(dict(data=data, protocol=protocol, k=k,
                            classes=list(classes), **r))

    for name, s in sets.items():
        res = knn_evaluate(of(name), s['labels'],
                           num_classes=len(s['classes']), **kw)
        add(name, 'multi-class', res, s['classes'])
        if s['binary'] is not None:
            res = knn_evaluate(of(name), s['binary'], num_classes=2, **kw)
            add(name, 'binary', res, ('negative', 'positive'))
    for a, b in transfers:
        res = knn_evaluate(of(a), sets[a]['binary'], num_classes=2,
                           test_feats=of(b), test_labels=sets[b]['binary'],
                           **kw)
        add(b, f'transfer {a}->{b}', res, ('negative', 'positive'))
    for srcs, tgt in whole:
        src_f = [torch.cat([f[s] for s in srcs]) for f in feats]
        src_y = np.concatenate([sets[s]['binary'] for s in srcs])
        res = knn_transfer_sensitivity(
            src_f, src_y, [f[tgt] for f in feats], sets[tgt]['binary'],
            topk=topk, T=T)
        # k of the largest weighted F1 of the source's own binary k-NN (its
        # random 75/25 splits): the k rule of Sec. 3.1 read where a weighted
        # F1 over both classes exists (on the positives-only target it only
        # restates the sensitivity, which large k drive to 100 % whenever
        # the source has more positives)
        src_res = knn_evaluate(src_f if multi else src_f[0], src_y,
                               num_classes=2, **kw)
        k_src = best_k(src_res)
        for k, r in res.items():
            r['source_weighted_f1'] = src_res[k]['weighted_f1']
            r['k_selected_by_source'] = k == k_src
        add(tgt, f"whole {'+'.join(srcs)}->{tgt}", res,
            ('negative', 'positive'))
    return out


def markdown_table(results: List[Dict], whole_k: str = 'source') -> str:
    """Best-k line per (row, data, protocol) as a Markdown table.

    ``whole_k``: the k shown for a whole-set transfer: ``'source'`` (best
    weighted F1 of the source's own binary k-NN) or ``'target'`` (best
    sensitivity on the target's positives).
    """
    lines = ['| features | data | protocol | k | weighted F1 (%) | '
             'accuracy (%) |', '|---|---|---|---|---|---|']
    groups: Dict[Tuple, List[Dict]] = {}
    for r in results:
        groups.setdefault((r['row'], r['data'], r['protocol']), []).append(r)
    sens_lines = []
    for (row, data, protocol), rs in groups.items():
        if 'sensitivity' in rs[0]:
            if whole_k == 'source':
                b = next(r for r in rs if r['k_selected_by_source'])
            else:  # positives-only weighted F1 = 2s/(1+s): best sensitivity
                b = max(rs, key=lambda r: (r['sensitivity'], -r['k']))
            spec = (f"{b['specificity']:.1f} +- {b['specificity_std']:.1f}"
                    if 'specificity' in b else '-')
            sens_lines.append(
                f"| {row} | {data} | {protocol} | {b['k']} | "
                f"{b['sensitivity']:.1f} +- {b['sensitivity_std']:.1f} | "
                f"{spec} | {len(b['per_run_sensitivity'])} |")
            continue
        b = max(rs, key=lambda r: (r['weighted_f1'], -r['k']))
        lines.append(f"| {row} | {data} | {protocol} | {b['k']} | "
                     f"{b['weighted_f1']:.1f} +- {b['weighted_f1_std']:.1f} | "
                     f"{b['accuracy']:.1f} +- {b['accuracy_std']:.1f} |")
    if sens_lines:
        lines += ['', f'| features | target | protocol (Table 3) | k (by {whole_k}) | '
                  'sensitivity (%) | specificity (%, ours) | runs |',
                  '|---|---|---|---|---|---|---|'] + sens_lines
    return '\n'.join(lines)


def key_value(items: Optional[Sequence[str]], flag: str) -> Dict[str, str]:
    """``NAME=VALUE`` items as a dict (``flag`` names them in errors)."""
    out = {}
    for item in items or []:
        if '=' not in item:
            raise ValueError(f'{flag} needs NAME=VALUE, got {item!r}')
        k, v = item.split('=', 1)
        if k in out:
            raise ValueError(f'{flag} name {k!r} given twice')
        out[k] = v
    return out


def parse_rows(backbone: Optional[str] = None,
               checkpoints: Optional[Sequence[str]] = None,
               random_init: bool = False,
               rows: Optional[Sequence[str]] = None,
               runs: Optional[Sequence[str]] = None
               ) -> List[Tuple[str, str, List[Optional[str]]]]:
    """``(name, backbone, checkpoints)`` of every feature source; a row has
    one checkpoint (or ``None``), a ``--runs`` row one per run.

    Args:
        backbone (str, optional): ``--backbone`` (preset or config).
        checkpoints (Sequence[str], optional): ``--checkpoint`` files (one
            row each).
        random_init (bool): Add a randomly initialised ``backbone`` row.
        rows (Sequence[str], optional): ``NAME=BACKBONE[,CKPT]`` items.
        runs (Sequence[str], optional): ``NAME=BACKBONE,CKPT1,CKPT2,...``.
    """
    out = []
    if backbone:
        if random_init or not checkpoints:
            out.append(('random', backbone, [None]))
        for ckpt in checkpoints or []:
            out.append((Path(ckpt).stem, backbone, [ckpt]))
    elif checkpoints or random_init:
        raise ValueError('--checkpoint/--random-init need --backbone')
    for name, value in key_value(rows, '--row').items():
        spec, _, ckpt = value.partition(',')
        out.append((name, spec, [ckpt or None]))
    for name, value in key_value(runs, '--runs').items():
        spec, *ckpts = value.split(',')
        ckpts = [c for c in ckpts if c]
        if len(ckpts) < 2:
            raise ValueError(f'--runs {name}: give BACKBONE,CKPT1,CKPT2,... '
                             f'(>= 2 models, one per run), got {value!r}')
        out.append((name, spec, ckpts))
    if not out:
        raise ValueError('nothing to evaluate: give --backbone or --row')
    names = [r[0] for r in out]
    if len(set(names)) != len(names):
        raise ValueError(f'feature source names must be unique, got {names}')
    return out


def knn_eval_report(data: Sequence[str],
                    backbone: Optional[str] = None,
                    checkpoints: Optional[Sequence[str]] = None,
                    random_init: bool = False,
                    rows: Optional[Sequence[str]] = None,
                    runs: Optional[Sequence[str]] = None,
                    checkpoint_prefix: Optional[str] = None,
                    backbone_key: str = 'model.backbone',
                    negative: Optional[Sequence[str]] = None,
                    transfer: Optional[Sequence[str]] = None,
                    transfer_whole: Optional[Sequence[str]] = None,
                    img_size: int = 224, batch_size: int = 64,
                    topk: Sequence[int] = (10, 20, 100, 200),
                    temperature: float = 0.07, num_splits: int = 4,
                    seed: int = 0, progress: bool = True) -> Dict:
    """Evaluate every feature source on every set: the JSON-able report.

    Args:
        data (Sequence[str]): ``NAME=FOLDER`` folder-per-class crop sets.
        backbone, checkpoints, random_init, rows, runs: Feature sources
            (:func:`parse_rows`).
        checkpoint_prefix (str, optional): Key prefix of the backbone in
            the checkpoints (default: found, :func:`build_backbone`).
        backbone_key (str): Dotted key of the backbone in a config.
        negative (Sequence[str], optional): ``NAME=cls1,cls2`` negative
            classes of sets not in :data:`BINARY_TABLES`.
        transfer (Sequence[str], optional): ``A:B`` split-matched transfers.
        transfer_whole (Sequence[str], optional): ``A[+B...]:C`` whole-set
            transfers (the paper's Table 3).
        img_size (int): Side the crops are resized to.
        batch_size (int): Crops per forward pass.
        topk (Sequence[int]): k values.
        temperature (float): Vote temperature ``T``.
        num_splits (int): Random 75/25 splits (a ``runs`` row: one per
            model).
        seed (int): Seed of the splits and random initialisations.
        progress (bool): Show progress bars.

    Returns:
        dict: ``tool``, ``protocol``, ``sets``, ``timing`` and ``results``
        (one dict per row, set, protocol and k).
    """
    rows = parse_rows(backbone, checkpoints, random_init, rows, runs)
    data = key_value(data, '--data')
    negatives = {k: [c for c in v.split(',') if c] for k, v in
                 key_value(negative, '--negative').items()}
    transfers = []
    for t in transfer or []:
        a, sep, b = t.partition(':')
        if not sep or a not in data or b not in data:
            raise ValueError(f'--transfer {t!r} needs A:B with A and B names '
                             f'of --data sets ({list(data)})')
        transfers.append((a, b))
    whole = []
    for t in transfer_whole or []:
        a, sep, b = t.partition(':')
        srcs = [x for x in a.split('+') if x]
        if not sep or not srcs or b not in data or \
                any(x not in data for x in srcs) or b in srcs:
            raise ValueError(f'--transfer-whole {t!r} needs A[+B...]:C with '
                             f'names of --data sets ({list(data)}), C not a '
                             'source')
        whole.append((srcs, b))
    sets, images = {}, {}
    for name, folder in data.items():
        classes, files, labels = list_crop_set(Path(folder))
        neg = negative_classes(name, classes, negatives)
        binary = None
        if neg is not None:
            binary = binary_labels(labels, classes,
                                   [c for c in classes if c not in neg])
        sets[name] = dict(folder=str(folder), classes=classes, labels=labels,
                          binary=binary, negative=None if neg is None
                          else list(neg), num_images=len(files),
                          class_counts=np.bincount(labels).tolist())
        images[name] = load_images(files, img_size, progress)
    for a, b in transfers + [(x, c) for srcs, c in whole for x in srcs]:
        for s in (a, b):
            if sets[s]['binary'] is None:
                raise ValueError(f'--transfer {a}:{b}: no binary mapping for '
                                 f'set {s!r} (classes {sets[s]["classes"]}); '
                                 f'give --negative {s}=cls1,cls2')
    results, timing = [], {}
    for name, spec, ckpts in rows:
        feats, t0, n = [], time.time(), 0
        for ckpt in ckpts:
            model = build_backbone(spec, ckpt, checkpoint_prefix,
                                   backbone_key, seed)
            feats.append({})
            for s, imgs in images.items():
                feats[-1][s] = extract_features(model, imgs, batch_size,
                                                progress, desc=f'{name}/{s}')
                n += len(imgs)
        seconds = time.time() - t0
        timing[name] = dict(seconds=round(seconds, 2),
                            images_per_second=round(n / max(seconds, 1e-9), 1),
                            feature_dim=int(next(iter(
                                feats[0].values())).shape[1]))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # k clamps, 1-sample
            for r in evaluate_row(feats, sets, transfers, topk, temperature,
                                  num_splits, seed, whole):
                results.append(dict(
                    row=name, backbone=spec,
                    checkpoint=ckpts[0] if len(ckpts) == 1 else ckpts, **r))
    return dict(
        tool='tools/ssl/knn_eval.py',
        protocol=dict(T=temperature, topk=list(topk), num_splits=num_splits,
                      train_frac=0.75,
                      transfer_whole=['+'.join(a) + ':' + b for a, b in whole],
                      seed=seed, img_size=img_size,
                      normalisation='ImageNet mean/std, RGB'),
        sets={k: {kk: vv for kk, vv in v.items()
                  if kk not in ('labels', 'binary')}
              for k, v in sets.items()},
        timing=timing, results=results)


__all__ = ['PRESETS', 'BINARY_TABLES', 'list_crop_set', 'negative_classes',
           'load_images', 'build_backbone', 'extract_features',
           'evaluate_row', 'markdown_table', 'key_value', 'parse_rows',
           'knn_eval_report']
