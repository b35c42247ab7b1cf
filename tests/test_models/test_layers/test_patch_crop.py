"""In-memory patch cropping: regions, crops of known content."""
import pytest
import torch

from cervdet.models.layers import crop_patches, patch_regions


def test_patch_regions_by_hand():
    boxes = torch.tensor([[10., 20., 30., 60.]])  # w 20, h 40, centre (20, 40)
    assert torch.equal(patch_regions(boxes), boxes)
    assert torch.allclose(patch_regions(boxes, scale=1.5),
                          torch.tensor([[5., 10., 35., 70.]]))
    assert torch.allclose(patch_regions(boxes, scale=1.5, square=True),
                          torch.tensor([[-10., 10., 50., 70.]]))
    # a fixed 256-px window centred on the box (official code's local patch)
    assert torch.allclose(
        patch_regions(boxes, scale=0., min_size=256., square=True),
        torch.tensor([[20. - 128, 40. - 128, 20. + 128, 40. + 128]]))
    with pytest.raises(ValueError, match=r'Tensor\[N, 4\]'):
        patch_regions(torch.zeros(3, 5))


def _coordinate_images(b=2, h=48, w=64):
    """Channel 0 = column index, 1 = row index, 2 = 100 * batch index."""
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(),
                            indexing='ij')
    imgs = torch.stack([xs, ys, torch.zeros_like(xs)])[None].repeat(b, 1, 1, 1)
    imgs[:, 2] = 100. * torch.arange(b).float()[:, None, None]
    return imgs


def test_crop_samples_box_exactly():
    imgs = _coordinate_images()
    # box (x1, y1, x2, y2) = (4, 8, 36, 24) of image 1, output 4 x 8
    rois = torch.tensor([[1., 4., 8., 36., 24.]])
    crop = crop_patches(imgs, rois, out_size=(4, 8))
    assert crop.shape == (1, 3, 4, 8)
    # pixel j covers [j, j+1]: output column c samples x = 4 + (c + .5) * 4,
    # the value there is x - 0.5 (a linear image is interpolated exactly)
    cols = 4 + (torch.arange(8).float() + 0.5) * 4 - 0.5
    rows = 8 + (torch.arange(4).float() + 0.5) * 4 - 0.5
    assert torch.allclose(crop[0, 0], cols[None].expand(4, -1), atol=1e-4)
    assert torch.allclose(crop[0, 1], rows[:, None].expand(-1, 8), atol=1e-4)
    assert torch.allclose(crop[0, 2], torch.full((4, 8), 100.))


def test_crops_of_known_content_follow_box_order_and_image():
    """Coloured squares on black; every crop shows its own square's colour."""
    imgs = torch.zeros(2, 3, 96, 96)
    squares = {  # (image, x1, y1, side) -> colour
        (0, 8, 8, 24): (255., 0., 0.),
        (0, 50, 40, 32): (0., 255., 0.),
        (1, 8, 8, 24): (0., 0., 255.),
        (1, 60, 10, 20): (90., 90., 90.),
    }
    for (b, x, y, s), colour in squares.items():
        imgs[b, :, y:y + s, x:x + s] = torch.tensor(colour)[:, None, None]
    order = [3, 0, 2, 1]  # any order: crops must come back in the rois' order
    items = list(squares.items())
    rois = torch.tensor([[b, x, y, x + s, y + s]
                         for (b, x, y, s), _ in (items[i] for i in order)],
                        dtype=torch.float)
    crops = crop_patches(imgs, rois, out_size=32)
    assert crops.shape == (4, 3, 32, 32)
    for crop, i in zip(crops, order):
        colour = torch.tensor(items[i][1])[:, None, None]
        # the interior shows exactly the square (the outermost sample rows
        # blend with the black border, half a source pixel away)
        assert torch.allclose(crop[:, 2:-2, 2:-2],
                              colour.expand(-1, 28, 28), atol=1e-3)


def test_outside_pixels_are_filled():
    imgs = torch.full((1, 3, 20, 20), 7.)
    rois = torch.tensor([[0., -20., 0., 0., 20.]])  # entirely left of image
    crop = crop_patches(imgs, rois, out_size=4, fill=(1., 2., 3.))
    assert torch.allclose(crop[0, :, :, 0], torch.tensor([1., 2., 3.])[:, None])
    inside = crop_patches(imgs, torch.tensor([[0., 2., 2., 18., 18.]]), 4,
                          fill=(1., 2., 3.))
    assert torch.allclose(inside, torch.full_like(inside, 7.))
    assert crop_patches(imgs, torch.zeros(0, 5), 8).shape == (0, 3, 8, 8)
