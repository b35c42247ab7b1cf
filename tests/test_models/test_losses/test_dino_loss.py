"""DINOLoss: hand-computed cross-entropies on 2-class logits (2 global
views, 0 and 2 local views, with and without centring), the centre EMA and
the teacher temperature warm-up."""
import math

import pytest
import torch

from cervdet.models.losses import (
    DINOLoss,
    dino_loss,
    teacher_entropy,
    teacher_temp_schedule,
    update_center,
)

LN3 = math.log(3.)


def H(q, p):
    """Cross-entropy -sum q log p of two 2-class distributions."""
    return -(q[0] * math.log(p[0]) + q[1] * math.log(p[1]))


def _logits(rows):
    """[V][K] python rows -> Tensor[V, 1, K] (batch of one)."""
    return torch.tensor(rows, dtype=torch.float64)[:, None, :]


# teacher (tau_t = 0.04): view 0 -> (.5, .5), view 1 -> (.75, .25)
TEACHER = _logits([[0., 0.], [0.04 * LN3, 0.]])
# student (tau_s = 0.1): v0 -> (.75, .25), v1 -> (.5, .5),
# locals v2 -> (.5, .5), v3 -> (.75, .25)
STUDENT = _logits([[0.1 * LN3, 0.], [0., 0.], [0., 0.], [0.1 * LN3, 0.]])


def test_two_global_views_no_center():
    loss = dino_loss(STUDENT[:2], TEACHER, torch.zeros(2, dtype=torch.float64),
                     student_temp=0.1, teacher_temp=0.04)
    # pairs (g0, v1) and (g1, v0)
    expected = (H((.5, .5), (.5, .5)) + H((.75, .25), (.75, .25))) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-9)


def test_two_local_views_average_over_six_pairs():
    loss = dino_loss(STUDENT, TEACHER, torch.zeros(2, dtype=torch.float64),
                     0.1, 0.04)
    q0, q1 = (.5, .5), (.75, .25)
    p = [(.75, .25), (.5, .5), (.5, .5), (.75, .25)]
    expected = (H(q0, p[1]) + H(q0, p[2]) + H(q0, p[3]) + H(q1, p[0]) +
                H(q1, p[2]) + H(q1, p[3])) / 6
    assert float(loss) == pytest.approx(expected, abs=1e-9)


def test_centering_shifts_teacher():
    center = torch.tensor([0.04 * LN3, 0.], dtype=torch.float64)
    loss = dino_loss(STUDENT[:2], TEACHER, center, 0.1, 0.04)
    # centred teacher: view 0 -> softmax(-ln3, 0) = (.25, .75);
    # view 1 -> (.5, .5)
    expected = (H((.25, .75), (.5, .5)) + H((.5, .5), (.75, .25))) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-9)


def test_teacher_temperature_sharpens():
    # tau_t = 0.08: view 1 becomes softmax(ln3 / 2, 0) = (sqrt3, 1)/(sqrt3+1)
    loss = dino_loss(STUDENT[:2], TEACHER, torch.zeros(2, dtype=torch.float64),
                     0.1, 0.08)
    s3 = math.sqrt(3.)
    expected = (H((.5, .5), (.5, .5)) +
                H((s3 / (s3 + 1), 1 / (s3 + 1)), (.75, .25))) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-9)


def test_gradient_only_to_student():
    student = STUDENT.clone().requires_grad_(True)
    teacher = TEACHER.clone().requires_grad_(True)
    dino_loss(student, teacher, torch.zeros(2, dtype=torch.float64), 0.1,
              0.04).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match='Tensor\\[V, B, K\\]'):
        dino_loss(torch.zeros(4, 2), torch.zeros(2, 1, 2), torch.zeros(2))
    with pytest.raises(ValueError, match='share'):
        dino_loss(torch.zeros(2, 3, 2), torch.zeros(2, 1, 2), torch.zeros(2))
    with pytest.raises(ValueError, match='at least one'):
        dino_loss(torch.zeros(1, 1, 2), torch.zeros(1, 1, 2), torch.zeros(2))


def test_center_ema_momentum_09():
    loss = DINOLoss(out_channels=2, center_momentum=0.9)
    teacher = torch.tensor([[[1., 2.]], [[3., 4.]]])  # mean (2, 3)
    out = loss(torch.zeros(2, 1, 2), teacher)
    torch.testing.assert_close(loss.center, torch.tensor([[0.2, 0.3]]))
    assert float(out['center_norm']) == pytest.approx(math.hypot(.2, .3))
    loss(torch.zeros(2, 1, 2), teacher)
    torch.testing.assert_close(loss.center, torch.tensor([[0.38, 0.57]]))
    torch.testing.assert_close(
        update_center(torch.tensor([[0.2, 0.3]]), torch.tensor([[2., 3.]])),
        torch.tensor([[0.38, 0.57]]))
    loss.eval()  # no centre update outside training
    loss(torch.zeros(2, 1, 2), teacher)
    torch.testing.assert_close(loss.center, torch.tensor([[0.38, 0.57]]))


def test_loss_uses_old_center_then_updates():
    loss = DINOLoss(out_channels=2, teacher_temp=0.04)
    out = loss(STUDENT[:2].float(), TEACHER.float())
    expected = (H((.5, .5), (.5, .5)) + H((.75, .25), (.75, .25))) / 2
    assert float(out['loss_dino']) == pytest.approx(expected, abs=1e-5)
    assert loss.center.abs().sum() > 0
    assert set(out) == {'loss_dino', 'teacher_entropy', 'center_norm',
                        'teacher_temp'}


def test_teacher_temp_warmup_values():
    assert teacher_temp_schedule(0, 10, 0.04, 0.07) == pytest.approx(0.04)
    assert teacher_temp_schedule(5, 10, 0.04, 0.07) == pytest.approx(0.055)
    assert teacher_temp_schedule(10, 10, 0.04, 0.07) == pytest.approx(0.07)
    assert teacher_temp_schedule(99, 10, 0.04, 0.07) == pytest.approx(0.07)
    assert teacher_temp_schedule(3, 0, 0.04, 0.07) == pytest.approx(0.07)
    by_iter = DINOLoss(2, warmup_teacher_temp=0.04, teacher_temp=0.07,
                       warmup_teacher_temp_iters=4)
    assert [round(by_iter.current_teacher_temp(i), 4) for i in range(6)] == \
        [0.04, 0.0475, 0.055, 0.0625, 0.07, 0.07]
    by_epoch = DINOLoss(2, warmup_teacher_temp=0.04, teacher_temp=0.07,
                        warmup_teacher_temp_epochs=30)
    assert by_epoch.current_teacher_temp(0, epoch=15.) == pytest.approx(0.055)
    out = by_epoch(torch.zeros(2, 1, 2), torch.zeros(2, 1, 2), epoch=15.)
    assert float(out['teacher_temp']) == pytest.approx(0.055)
    with pytest.raises(ValueError, match='no epoch'):
        by_epoch.current_teacher_temp(3)


def test_teacher_entropy_bounds():
    k = 8
    uniform = torch.zeros(2, 4, k)
    assert float(teacher_entropy(uniform, torch.zeros(k), 0.04)) == \
        pytest.approx(math.log(k), abs=1e-6)
    peaked = torch.zeros(2, 4, k)
    peaked[..., 0] = 10.
    assert float(teacher_entropy(peaked, torch.zeros(k), 0.04)) < 1e-6


def test_invalid_arguments():
    with pytest.raises(ValueError, match='student_temp'):
        DINOLoss(2, student_temp=0.)
    with pytest.raises(ValueError, match='center_momentum'):
        DINOLoss(2, center_momentum=1.5)
