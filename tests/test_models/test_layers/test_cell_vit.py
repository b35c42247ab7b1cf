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
