"""tools/ssl: tile extractor, backbone converter and k-NN evaluation
(their logic: cervdet.datasets.ssl_tiles, cervdet.utils.backbone_convert,
cervdet.evaluation.knn)."""
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cervdet.datasets import slide_readers as readers
from cervdet.datasets import ssl_tiles as tiles
from cervdet.evaluation import knn
from cervdet.models.utils import pool_backbone_output
from cervdet.utils import backbone_convert as conv
from conftest import ROOT, run_tool

SSL_TOOLS = ROOT / 'tools' / 'ssl'
R18_W32 = dict(depth=18, stem_channels=32, base_channels=32)
RETINANET_R18 = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
PCN_R18 = ROOT / 'configs' / 'pcn_retinanet' / \
    'pcn_resnet18-w32_gap_adam-12e_1xb32_cervical-patches-bethesda-512.py'


# ----------------------------------------------------------------------------
# extract_tiles (the extraction itself: tests/test_datasets/test_ssl_tiles.py)
# ----------------------------------------------------------------------------
def test_readers_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        readers.open_slide(tmp_path / 'missing.jpg')
    wsi = tmp_path / 'a.svs'
    wsi.write_bytes(b'not a slide')
    # corrupt: every installed backend fails, each one's error is named
    with pytest.raises(readers.SlideOpenError,
                       match='pip install openslide-python'):
        readers.open_slide(wsi)
    old_available = readers._available
    readers._available = lambda name: False
    try:  # no WSI package installed: says what to install
        with pytest.raises(ImportError, match='pip install openslide-python'):
            readers.open_slide(wsi)
    finally:
        readers._available = old_available
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, :, 0] = np.arange(20)
    cv2.imwrite(str(tmp_path / 'a.png'), img[..., ::-1])
    with readers.open_slide(tmp_path / 'a.png') as r:
        assert r.dimensions == (20, 10) and r.level_count == 1
        reg = r.read_region(15, 5, 10, 10)  # crosses the border: white pad
        assert reg[0, :5, 0].tolist() == [15, 16, 17, 18, 19]
        assert (reg[:, 5:] == 255).all() and (reg[5:] == 255).all()
        with pytest.raises(ValueError, match='level 0 only'):
            r.read_region(0, 0, 2, 2, level=1)
    readers.MAX_PLAIN_PIXELS, old = 100, readers.MAX_PLAIN_PIXELS
    try:  # too large to decode whole: needs a WSI reader
        with pytest.raises(ValueError, match='too large to decode'):
            readers.open_slide(tmp_path / 'a.png')
    finally:
        readers.MAX_PLAIN_PIXELS = old
    with pytest.raises(ValueError, match='--source-mpp'):
        tiles.extract_tiles([str(tmp_path / 'a.png')], tmp_path / 'o',
                            tile_size=4, mpp=0.5, progress=False)


def test_extract_tiles_cli(shared_data, tmp_path):
    out = tmp_path / 'cli'
    args = [sys.executable, SSL_TOOLS / 'extract_tiles.py',
            shared_data / 'tct_field' / 'field_4096x2816.jpg', '--out-dir',
            out, '--tile-size', '512', '--format', 'png']
    proc = run_tool(args)
    assert 'kept' in proc.stdout and 'skipped' in proc.stdout
    assert len(list(out.glob('field_4096x2816_x*_y*.png'))) > 0
    again = run_tool(args, check=False)
    assert again.returncode == 2 and '--force-overwrite' in again.stderr


# ----------------------------------------------------------------------------
# convert_backbone
# ----------------------------------------------------------------------------
def _fake_dino_ckpt(path, backbone):
    """A DINOPretrain-like checkpoint: student, teacher (different), head."""
    sd = backbone.state_dict()
    state = {}
    for k, v in sd.items():
        state['backbone.' + k] = v.clone()
        state['teacher.backbone.' + k] = (v + 1. if v.is_floating_point()
                                          else v.clone())
    state['head.mlp.0.weight'] = torch.zeros(4, 4)
    state['teacher.head.mlp.0.weight'] = torch.zeros(4, 4)
    torch.save(dict(state_dict=state, meta=dict(epoch=1)), path)
    return sd


def test_convert_round_trip_into_mmdet_and_mmpretrain_resnet(tmp_path):
    from mmdet.models.backbones import ResNet as DetResNet
    from mmpretrain.models.backbones import ResNet as PretrainResNet
    src = PretrainResNet(depth=18)
    sd = _fake_dino_ckpt(tmp_path / 'dino.pth', src)
    meta = conv.convert(tmp_path / 'dino.pth', tmp_path / 'teacher.pth')
    assert meta['src_prefix'] == 'teacher.backbone.'
    out = torch.load(tmp_path / 'teacher.pth', weights_only=True)
    assert set(out) == {'state_dict', 'meta'}
    state = out['state_dict']
    assert set(state) == set(sd)  # no prefix, nothing of the head
    assert torch.equal(state['conv1.weight'], sd['conv1.weight'] + 1.)
    for target in (DetResNet(depth=18), PretrainResNet(depth=18)):
        report = conv.check_load(target, state)
        assert report == dict(missing=[], unexpected=[], shape_mismatch=[])
        for k, v in target.state_dict().items():
            assert torch.equal(v, state[k]), k
    # student, with a prefix for load_from of a whole model
    conv.convert(tmp_path / 'dino.pth', tmp_path / 'student.pth',
                 source='student', prefix='backbone.')
    st = torch.load(tmp_path / 'student.pth', weights_only=True)['state_dict']
    assert torch.equal(st['backbone.layer4.1.conv2.weight'],
                       sd['layer4.1.conv2.weight'])
    # what mmengine's Pretrained init does in a config
    from mmengine.runner import load_checkpoint
    det = DetResNet(depth=18)
    load_checkpoint(det, str(tmp_path / 'teacher.pth'), strict=True)
    assert torch.equal(det.layer1[0].conv1.weight,
                       sd['layer1.0.conv1.weight'] + 1.)


def test_convert_errors(tmp_path):
    from mmpretrain.models.backbones import ResNet
    _fake_dino_ckpt(tmp_path / 'dino.pth', ResNet(depth=18))
    with pytest.raises(KeyError, match=r"prefixes \['backbone.', "
                       r"'teacher.backbone.', 'head.mlp.', 'teacher.head.'"):
        conv.convert(tmp_path / 'dino.pth', tmp_path / 'x.pth',
                     src_prefix='model.backbone.')
    conv.convert(tmp_path / 'dino.pth', tmp_path / 'x.pth')
    with pytest.raises(FileExistsError, match='--force-overwrite'):
        conv.convert(tmp_path / 'dino.pth', tmp_path / 'x.pth')
    conv.convert(tmp_path / 'dino.pth', tmp_path / 'x.pth',
                 force_overwrite=True)
    # a mis-shaped backbone is reported, not silently loaded
    wide = ResNet(depth=18, stem_channels=32, base_channels=32)
    state = torch.load(tmp_path / 'x.pth', weights_only=True)['state_dict']
    before = wide.conv1.weight.clone()
    report = conv.check_load(wide, state)
    assert report['shape_mismatch'] and not report['missing']
    assert torch.equal(wide.conv1.weight, before)
    state.pop('conv1.weight')
    state['extra.weight'] = torch.zeros(1)
    report = conv.check_load(ResNet(depth=18), state)
    assert report['missing'] == ['conv1.weight']
    assert report['unexpected'] == ['extra.weight']


def test_vit_small_key_layout(tmp_path):
    from mmpretrain.models.backbones import VisionTransformer
    vit = VisionTransformer(arch='deit-small', patch_size=16, img_size=224)
    sd = _fake_dino_ckpt(tmp_path / 'vit.pth', vit)
    conv.convert(tmp_path / 'vit.pth', tmp_path / 'vit_bb.pth')
    state = torch.load(tmp_path / 'vit_bb.pth', weights_only=True)[
        'state_dict']
    assert {'cls_token', 'pos_embed', 'patch_embed.projection.weight',
            'layers.11.ffn.layers.1.bias', 'ln1.weight'} <= set(state)
    fresh = VisionTransformer(arch='deit-small', patch_size=16, img_size=224)
    assert conv.check_load(fresh, state) == dict(
        missing=[], unexpected=[], shape_mismatch=[])
    assert torch.equal(fresh.cls_token, sd['cls_token'] + 1.)


def test_check_config_pcn_classifier_in_process(tmp_path):
    from mmpretrain.models.backbones import ResNet
    _fake_dino_ckpt(tmp_path / 'dino.pth', ResNet(**R18_W32))
    conv.convert(tmp_path / 'dino.pth', tmp_path / 'bb.pth')
    _, backbone, name = conv.build_target(str(PCN_R18))
    assert name == 'backbone'
    state = torch.load(tmp_path / 'bb.pth', weights_only=True)['state_dict']
    assert not any(conv.check_load(backbone, state).values())


def test_convert_cli_check_detector_config(tmp_path):
    from mmpretrain.models.backbones import ResNet
    _fake_dino_ckpt(tmp_path / 'w32.pth', ResNet(**R18_W32))
    ok = run_tool([sys.executable, SSL_TOOLS / 'convert_backbone.py',
                   tmp_path / 'w32.pth', '--out', tmp_path / 'ok.pth',
                   '--check-config', RETINANET_R18])
    assert 'loaded strictly into model.backbone' in ok.stdout
    # the same detector rejects a full-width ResNet-18 (main() exits 1)
    _fake_dino_ckpt(tmp_path / 'w64.pth', ResNet(depth=18))
    assert run_tool([sys.executable, SSL_TOOLS / 'convert_backbone.py',
                     tmp_path / 'w64.pth', '--out', tmp_path / 'bad.pth',
                     '--check-config', RETINANET_R18],
                    check=False).returncode == 1


# ----------------------------------------------------------------------------
# knn_eval
# ----------------------------------------------------------------------------
def test_binary_tables_match_the_real_sets(shared_data):
    for name, folder, n_neg in (('herlev', 'herlev', 3),
                                ('bethesda', 'cric_crops_bethesda', 1)):
        classes, files, labels = knn.list_crop_set(shared_data / folder)
        neg = knn.negative_classes(name, classes, {})
        assert len(neg) == n_neg and set(neg) <= set(classes)
        # found by the class folders, whatever the set is called
        assert knn.negative_classes('x', classes, {}) == neg
    assert knn.negative_classes('x', ['a', 'b'], {}) is None
    assert knn.negative_classes('x', ['a', 'b'], {'x': ['a']}) == ('a', )
    with pytest.raises(ValueError, match='not classes'):
        knn.negative_classes('x', ['a', 'b'], {'x': ['c']})


def test_pool_features_shapes():
    # knn_eval pools with the DINO model's pooling (one implementation)
    assert pool_backbone_output((torch.ones(2, 8, 3, 3), )).shape == (2, 8)
    assert pool_backbone_output(torch.ones(2, 5, 8)).shape == (2, 8)
    assert pool_backbone_output((torch.ones(2, 8), )).shape == (2, 8)


def _tiny_set(src: Path, dst: Path, n: int):
    for cls in sorted(p for p in src.iterdir() if p.is_dir()):
        (dst / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:n]:
            (dst / cls.name / f.name).symlink_to(f)
    return dst


def test_knn_eval_cli_rows_transfer_and_json(shared_data, tmp_path):
    herlev = _tiny_set(shared_data / 'herlev', tmp_path / 'herlev', 6)
    beth = _tiny_set(shared_data / 'cric_crops_bethesda', tmp_path / 'beth', 6)
    from mmpretrain.models.backbones import ResNet
    _fake_dino_ckpt(tmp_path / 'dino.pth', ResNet(**R18_W32))
    conv.convert(tmp_path / 'dino.pth', tmp_path / 'bb.pth')
    out = tmp_path / 'knn.json'
    args = [sys.executable, SSL_TOOLS / 'knn_eval.py', '--backbone',
            'resnet18-w32', '--random-init', '--row',
            f'dino=resnet18-w32,{tmp_path / "dino.pth"}', '--data',
            f'herlev={herlev}', '--data', f'bethesda={beth}', '--transfer',
            'herlev:bethesda', '--img-size', '32', '--topk', '3', '50',
            '--num-splits', '2', '--out', out, '--no-progress']
    proc = run_tool(args)
    assert '| random | herlev | multi-class |' in proc.stdout
    assert '| dino | bethesda | transfer herlev->bethesda |' in proc.stdout
    rep = json.loads(out.read_text())
    assert rep['sets']['herlev']['negative'] == list(
        knn.BINARY_TABLES['herlev']['negative'])
    assert rep['sets']['bethesda']['class_counts'] == [6] * 6
    keys = {(r['row'], r['data'], r['protocol'], r['k'])
            for r in rep['results']}
    # 2 rows x (2 sets x 2 protocols + 1 transfer) x 2 k
    assert len(keys) == 20 and ('dino', 'herlev', 'binary', 50) in keys
    for r in rep['results']:
        assert 0. <= r['weighted_f1'] <= 100. and r['weighted_f1_std'] >= 0.
    assert rep['timing']['dino']['feature_dim'] == 256
    # different weights -> different features -> (almost surely) other F1s
    f1 = {(r['row'], r['data'], r['protocol'], r['k']): r['weighted_f1']
          for r in rep['results']}
    assert any(f1[('random',) + k[1:]] != v for k, v in f1.items()
               if k[0] == 'dino')
    # refuses to overwrite
    assert run_tool(args, check=False).returncode == 2


def test_knn_eval_paper_runs_and_whole_set_transfer(shared_data, tmp_path):
    """Table 3 protocol: fit on all of the source, sensitivity on the
    target's positives, mean +- std over the models of a --runs row."""
    herlev = _tiny_set(shared_data / 'herlev', tmp_path / 'herlev', 4)
    beth = _tiny_set(shared_data / 'cric_crops_bethesda', tmp_path / 'beth', 3)
    from mmpretrain.models.backbones import ResNet
    ckpts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        _fake_dino_ckpt(tmp_path / f'dino{seed}.pth', ResNet(**R18_W32))
        ckpts.append(str(tmp_path / f'dino{seed}.pth'))
    out = tmp_path / 'knn.json'
    knn_eval = [sys.executable, SSL_TOOLS / 'knn_eval.py']
    rc = run_tool(knn_eval + [
        '--runs', 'dino=resnet18-w32,' + ','.join(ckpts), '--data',
        f'herlev={herlev}', '--data', f'beth={beth}', '--transfer-whole',
        'herlev:beth', '--img-size', '32', '--topk', '1', '3', '--out',
        str(out), '--no-progress'], check=False).returncode
    assert rc == 0
    rep = json.loads(out.read_text())
    whole = [r for r in rep['results']
             if r['protocol'] == 'whole herlev->beth']
    assert sorted(r['k'] for r in whole) == [1, 3]
    for r in whole:
        # 5 abnormal Bethesda classes x 3 crops are the target positives
        assert r['num_positives'] == 15 and len(r['per_run_sensitivity']) == 2
        assert r['sensitivity'] == pytest.approx(
            np.mean(r['per_run_sensitivity']))
        assert 0. <= r['specificity'] <= 100.
        assert 0. <= r['source_weighted_f1'] <= 100.
    # exactly one k is marked: the best binary weighted F1 of the source
    chosen = [r for r in whole if r['k_selected_by_source']]
    assert len(chosen) == 1 and chosen[0]['source_weighted_f1'] == max(
        r['source_weighted_f1'] for r in whole)
    table = knn.markdown_table(rep['results'])
    assert f"| dino | beth | whole herlev->beth | {chosen[0]['k']} |" in table
    # within-set rows of a --runs row: one split per model (2, not 4)
    herlev_rows = [r for r in rep['results'] if r['data'] == 'herlev']
    assert all(len(r['per_split_weighted_f1']) == 2 for r in herlev_rows)
    assert rep['protocol']['transfer_whole'] == ['herlev:beth']
    assert run_tool(knn_eval + ['--runs', 'x=resnet18-w32,a.pth', '--data',
                                f'herlev={herlev}', '--no-progress'],
                    check=False).returncode == 2
    assert run_tool(knn_eval + ['--backbone', 'resnet18-w32', '--data',
                                f'herlev={herlev}', '--transfer-whole',
                                'herlev:nope', '--no-progress'],
                    check=False).returncode == 2


def test_knn_eval_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='--backbone or --row'):
        knn.parse_rows()  # --data a=b only
    with pytest.raises(ValueError, match='unique'):
        knn.parse_rows(backbone='resnet18', rows=['random=resnet18'])
    with pytest.raises(ValueError, match='neither a preset'):
        knn.build_backbone('resnet999')
    torch.save({'state_dict': {'foo.conv1.weight': torch.zeros(1)}},
               tmp_path / 'c.pth')
    with pytest.raises(KeyError, match=r"its prefixes are \['foo.conv1.'\]"):
        knn.build_backbone('resnet18-w32', str(tmp_path / 'c.pth'))


class _FakeOpenSlide:
    """The part of ``openslide.OpenSlide`` the WSI readers use: RGBA
    regions (transparent outside tissue), 3 levels, mpp property."""

    level_dimensions = ((4000, 3000), (1000, 750), (250, 188))
    level_downsamples = (1., 4., 16.)
    properties = {'openslide.mpp-x': '0.25'}

    def __init__(self):
        self.reads = []

    def read_region(self, loc, level, size):
        self.reads.append((loc, level, size))
        w, h = size
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = (150, 80, 160)
        rgba[..., 3] = 255
        rgba[:, : w // 2, 3] = 0  # left half transparent
        return rgba

    def close(self):
        pass


def test_openslide_adapter_alpha_thumbnail_strips():
    class Reader(readers._WSIReader):
        strip_pixels = 1000 * 100  # force several strips

        def __init__(self):
            self.path = Path('fake.svs')
            self._slide = _FakeOpenSlide()
            self._init_geometry()

    r = Reader()
    assert r.dimensions == (4000, 3000) and r.mpp == 0.25
    assert r.best_level_for_downsample(5.) == 1
    reg = r.read_region(0, 0, 10, 4, level=0)
    assert (reg[:, :5] == 255).all() and reg[0, 7].tolist() == [150, 80, 160]
    thumb, ds = r.thumbnail(250)  # level 2 is small enough: read whole
    assert thumb.shape == (188, 250, 3) and ds == 16.
    thumb, ds = r.thumbnail(500)  # level 1 (1000 px) read in strips
    assert thumb.shape[1] == 500 and abs(thumb.shape[0] - 375) <= 2
    assert ds == pytest.approx(8.)
    assert (thumb[:, :240] == 255).all() and (thumb[:, 260:, 0] == 150).all()
    lvl1 = [rd for rd in r._slide.reads if rd[1] == 1]
    assert len(lvl1) > 1 and all(w * h <= 100000 for _, _, (w, h) in lvl1)
    assert all(rd[1] != 0 or rd[2] == (10, 4) for rd in r._slide.reads)


SSL_CONFIGS = ROOT / 'configs' / 'ssl'


def test_round_trip_from_dinopretrain_config_into_detector(tmp_path):
    """A real DINOPretrain state dict (CPU ResNet-18-w32 config) -> teacher
    backbone -> the CPU RetinaNet's backbone, strictly."""
    model, _, _ = conv.build_target(
        str(SSL_CONFIGS / 'dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py'))
    sd = model.state_dict()
    assert any(k.startswith('teacher.backbone.') for k in sd)
    torch.save(dict(state_dict=sd), tmp_path / 'dino.pth')
    conv.convert(tmp_path / 'dino.pth', tmp_path / 'bb.pth')
    state = torch.load(tmp_path / 'bb.pth', weights_only=True)['state_dict']
    _, det_backbone, _ = conv.build_target(str(RETINANET_R18))
    assert not any(conv.check_load(det_backbone, state).values())
    assert torch.equal(det_backbone.conv1.weight,
                       sd['teacher.backbone.conv1.weight'])
    # the ViT-S/16 config's backbone has mmpretrain VisionTransformer keys
    from mmpretrain.models.backbones import VisionTransformer
    vit_cfg = knn.build_backbone(
        str(SSL_CONFIGS / 'dino_vit-small-p16_adamw-300e_cervical-tiles.py'))
    ref = VisionTransformer(arch='deit-small', patch_size=16, img_size=224)
    assert not any(conv.check_load(ref, vit_cfg.state_dict()).values())
