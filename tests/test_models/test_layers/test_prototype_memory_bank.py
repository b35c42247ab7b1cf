"""PrototypeMemoryBank: FIFO order, size cap, fill count, class means,
checkpoint buffers and the distributed (2 gloo ranks) synchronisation."""
import json
import sys

import pytest
import torch
from mmdet.registry import MODELS

from cervdet.models.layers import PrototypeMemoryBank
from conftest import free_port, run_tool


def entry(values):
    """Prototypes [P, 2] whose first coordinate identifies the entry."""
    values = torch.tensor(values, dtype=torch.float)
    return torch.stack([values, -values], dim=1)


def test_fifo_order_size_cap_and_fill():
    bank = PrototypeMemoryBank(num_classes=2, embed_dim=2, size=3)
    assert int(bank.fill) == 0 and bank.entries()[0].shape == (0, 2)
    bank.push(entry([1, 2]), torch.tensor([0, 1]))
    assert int(bank.fill) == 2 and int(bank.ptr) == 2
    bank.push(entry([3, 4]), torch.tensor([1, 1]))  # overwrites entry 1
    assert int(bank.fill) == 3 and int(bank.ptr) == 1
    protos, labels = bank.entries()
    assert protos[:, 0].tolist() == [2, 3, 4] and labels.tolist() == [1, 1, 1]
    # an empty push changes nothing
    bank.push(entry([]), torch.zeros(0, dtype=torch.long))
    assert int(bank.fill) == 3 and int(bank.ptr) == 1
    # more entries than slots: only the newest `size` survive
    bank.push(entry([5, 6, 7, 8, 9]), torch.tensor([0, 0, 1, 0, 1]))
    protos, labels = bank.entries()
    assert protos[:, 0].tolist() == [7, 8, 9] and labels.tolist() == [1, 0, 1]
    assert int(bank.fill) == 3 and bank.protos.shape == (3, 2)


def test_class_means():
    bank = PrototypeMemoryBank(num_classes=3, embed_dim=2, size=4)
    means, present = bank.class_means()
    assert not present.any() and (means == 0).all()
    bank.push(entry([1, 3, 10]), torch.tensor([0, 0, 2]))
    means, present = bank.class_means()
    assert present.tolist() == [True, False, True]
    assert torch.allclose(means, torch.tensor([[2., -2.], [0., 0.],
                                               [10., -10.]]))
    bank.push(entry([5, 7]), torch.tensor([1, 1]))  # entry 1 leaves
    means, present = bank.class_means()
    assert present.tolist() == [True, True, True]
    assert torch.allclose(means[:2], torch.tensor([[3., -3.], [6., -6.]]))


def test_push_detaches_and_checks():
    bank = PrototypeMemoryBank(num_classes=2, embed_dim=2, size=4)
    protos = torch.randn(2, 2, requires_grad=True)
    bank.push(protos, torch.tensor([0, 1]))
    assert not bank.protos.requires_grad
    with pytest.raises(ValueError, match=r'\[0, 2\)'):
        bank.push(protos, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match='Tensor\\[P, 2\\]'):
        bank.push(torch.randn(2, 3), torch.tensor([0, 1]))


def test_buffers_are_saved_in_checkpoints():
    bank = MODELS.build(dict(type='PrototypeMemoryBank', num_classes=2,
                             embed_dim=2, size=3))
    assert isinstance(bank, PrototypeMemoryBank)
    bank.push(entry([1, 2, 3, 4]), torch.tensor([0, 1, 0, 1]))
    state = bank.state_dict()
    assert set(state) == {'protos', 'labels', 'ptr', 'fill'}
    other = PrototypeMemoryBank(num_classes=2, embed_dim=2, size=3)
    other.load_state_dict(state)
    for a, b in zip(bank.entries(), other.entries()):
        assert torch.equal(a, b)
    assert int(other.ptr) == 0 and int(other.fill) == 3  # 4 > 3: newest 3
    assert PrototypeMemoryBank(2, 128).protos.shape == (1024, 128)


DIST_SCRIPT = r'''
import json
import sys

import torch
import torch.distributed as torch_dist

from cervdet.models.layers.prototype_memory_bank import PrototypeMemoryBank

torch_dist.init_process_group('gloo')
rank = torch_dist.get_rank()
bank = PrototypeMemoryBank(num_classes=3, embed_dim=2, size=4)


def push(values, labels):
    values = torch.tensor(values, dtype=torch.float).reshape(-1)
    bank.push(torch.stack([values, -values], 1),
              torch.tensor(labels, dtype=torch.long))


# step 1: rank 0 pushes 1 entry, rank 1 pushes 2
push([10.], [0]) if rank == 0 else push([20., 21.], [1, 2])
# step 2: rank 0 pushes 2, rank 1 none (5 entries > size 4)
push([12., 13.], [2, 1]) if rank == 0 else push([], [])
protos, labels = bank.entries()
means, present = bank.class_means()
with open(sys.argv[1] + f'/rank{rank}.json', 'w') as f:
    json.dump(dict(protos=protos.tolist(), labels=labels.tolist(),
                   fill=int(bank.fill), ptr=int(bank.ptr),
                   means=means.tolist(), present=present.tolist()), f)
torch_dist.destroy_process_group()
'''


def test_distributed_push_gives_identical_banks(tmp_path):
    script = tmp_path / 'bank_sync.py'
    script.write_text(DIST_SCRIPT)
    run_tool([sys.executable, '-m', 'torch.distributed.run',
              '--nproc_per_node', '2', '--master_port', free_port(), script,
              tmp_path], timeout=120)
    results = [json.loads((tmp_path / f'rank{r}.json').read_text())
               for r in range(2)]
    assert results[0] == results[1]
    res = results[0]
    # gathered in rank order: [10], [20, 21], then [12, 13]; 10 is dropped
    assert [p[0] for p in res['protos']] == [20., 21., 12., 13.]
    assert res['labels'] == [1, 2, 2, 1]
    assert res['fill'] == 4 and res['ptr'] == 1
    assert res['present'] == [False, True, True]
    assert res['means'][1] == [16.5, -16.5] and \
        res['means'][2] == [16.5, -16.5]
