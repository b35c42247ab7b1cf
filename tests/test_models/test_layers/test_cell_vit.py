"""Tests of the hybrid ViT local branch."""
import pytest
import torch

from cervdet.models.layers import CellViT


def test_shapes_and_per_cell_independence():
    torch.manual_seed(0)
    vit = CellViT(in_channels=8, embed_dims=12, depth=2, num_heads=3,
                  map_size=3).eval()
    assert vit.pos_embed.shape == (1, 10, 12)
    maps = torch.randn(4, 8, 3, 3)
    y = vit(maps)
    assert y.shape == (4, 12) and vit.out_channels == 12
    # every cell is encoded on its own
    assert torch.allclose(vit(maps[1:2]), y[1:2], atol=1e-5)
    # the output is the LayerNorm'ed class token: mean 0 per cell
    assert torch.allclose(y.mean(1), torch.zeros(4), atol=1e-5)


def test_position_embeddings_matter_and_resize():
    torch.manual_seed(0)
    vit = CellViT(in_channels=4, embed_dims=8, depth=1, num_heads=2,
                  map_size=2).eval()
    maps = torch.randn(1, 4, 2, 2)
    y = vit(maps)
    flipped = maps.flip(-1)  # same tokens, other positions
    assert not torch.allclose(vit(flipped), y)
    assert vit(torch.randn(2, 4, 3, 3)).shape == (2, 8)  # resized pos


def test_gradient_and_errors():
    vit = CellViT(in_channels=4, embed_dims=8, depth=1, num_heads=2,
                  map_size=2)
    vit(torch.randn(3, 4, 2, 2)).sum().backward()
    assert vit.cls_token.grad is not None and vit.pos_embed.grad is not None
    with pytest.raises(ValueError, match='in_channels'):
        vit(torch.randn(3, 5, 2, 2))
    with pytest.raises(ValueError, match='divisible'):
        CellViT(embed_dims=10, num_heads=3)


def _fake_vit_b_state(naming: str, depth: int = 2, dims: int = 12,
                      grid: int = 4, seed: int = 0) -> dict:
    """A ViT checkpoint's state dict in mmpretrain or timm naming (small
    width, ``grid x grid`` patches), with a patch embedding and a head that
    must not be loaded."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    mm = {'cls_token': r(1, 1, dims), 'pos_embed': r(1, grid * grid + 1, dims),
          'patch_embed.projection.weight': r(dims, 3, 16, 16),
          'ln1.weight': r(dims), 'ln1.bias': r(dims)}
    for i in range(depth):
        p = f'layers.{i}.'
        mm.update({
            p + 'ln1.weight': r(dims), p + 'ln1.bias': r(dims),
            p + 'attn.qkv.weight': r(3 * dims, dims),
            p + 'attn.qkv.bias': r(3 * dims),
            p + 'attn.proj.weight': r(dims, dims),
            p + 'attn.proj.bias': r(dims),
            p + 'ln2.weight': r(dims), p + 'ln2.bias': r(dims),
            p + 'ffn.layers.0.0.weight': r(4 * dims, dims),
            p + 'ffn.layers.0.0.bias': r(4 * dims),
            p + 'ffn.layers.1.weight': r(dims, 4 * dims),
            p + 'ffn.layers.1.bias': r(dims)})
    if naming == 'mmpretrain':
        return {'backbone.' + k: v for k, v in mm.items()} | {
            'head.layers.head.weight': r(5, dims)}
    timm = {}
    for k, v in mm.items():
        k = (k.replace('ffn.layers.0.0', 'mlp.fc1')
             .replace('ffn.layers.1', 'mlp.fc2').replace('layers.', 'blocks.')
             .replace('.ln1.', '.norm1.').replace('.ln2.', '.norm2.'))
        k = 'norm.' + k[4:] if k.startswith('ln1.') else k
        k = k.replace('patch_embed.projection', 'patch_embed.proj')
        timm[k] = v
    timm['head.weight'] = r(5, dims)
    return timm


@pytest.mark.parametrize('naming,prefix', [('mmpretrain', 'backbone.'),
                                           ('timm', '')])
def test_imagenet_init_cfg_loads_the_transformer(tmp_path, naming, prefix):
    """The Pretrained init_cfg (ImageNet-21k in the paper config) loads
    class token, layers and final norm, resizes the 4x4 position grid to the
    map size and leaves the 1x1 patch embedding random."""
    from mmpretrain.models.utils import resize_pos_embed
    state = _fake_vit_b_state(naming)
    ckpt = tmp_path / 'vit.pth'
    torch.save({'state_dict': state}, ckpt)
    torch.manual_seed(0)
    vit = CellViT(in_channels=8, embed_dims=12, depth=2, num_heads=3,
                  map_size=2, init_cfg=dict(type='Pretrained',
                                            checkpoint=str(ckpt),
                                            prefix=prefix))
    embed_before = vit.patch_embed.weight.detach().clone()
    vit.init_weights()
    k = 'backbone.' if naming == 'mmpretrain' else ''
    blk = 'layers' if naming == 'mmpretrain' else 'blocks'
    fc1 = 'ffn.layers.0.0' if naming == 'mmpretrain' else 'mlp.fc1'
    assert torch.equal(vit.cls_token, state[k + 'cls_token'])
    assert torch.equal(vit.layers[1].attn.qkv.weight,
                       state[f'{k}{blk}.1.attn.qkv.weight'])
    assert torch.equal(vit.layers[0].ffn.layers[0][0].weight,
                       state[f'{k}{blk}.0.{fc1}.weight'])
    final = 'backbone.ln1.weight' if naming == 'mmpretrain' else \
        'norm.weight'
    assert torch.equal(vit.norm.weight, state[final])
    assert vit.pos_embed.shape == (1, 5, 12)
    ref = resize_pos_embed(state[k + 'pos_embed'], (4, 4), (2, 2),
                           num_extra_tokens=1)
    assert torch.allclose(vit.pos_embed, ref)
    assert torch.equal(vit.patch_embed.weight, embed_before)  # not loaded


def test_imagenet_init_cfg_errors(tmp_path):
    ckpt = tmp_path / 'vit.pth'
    torch.save(_fake_vit_b_state('mmpretrain'), ckpt)
    vit = CellViT(in_channels=8, embed_dims=12, depth=2, num_heads=3,
                  map_size=2, init_cfg=dict(type='Pretrained',
                                            checkpoint=str(ckpt)))
    with pytest.raises(ValueError, match='no transformer layer'):
        vit.init_weights()  # prefix 'backbone.' missing
    vit = CellViT(in_channels=8, embed_dims=16, depth=2, num_heads=4,
                  map_size=2, init_cfg=dict(type='Pretrained',
                                            checkpoint=str(ckpt),
                                            prefix='backbone.'))
    with pytest.raises(ValueError, match='embed_dims=768'):
        vit.init_weights()
