"""Tests of the CLAM-style gated attention MIL pooling."""
import torch

from cervdet.models.layers import GatedAttentionMIL


def test_gated_attention_masks_and_formula():
    torch.manual_seed(0)
    m = GatedAttentionMIL(in_channels=6, hidden_channels=4,
                          attn_channels=3).eval()
    feats = torch.randn(2, 5, 6)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]).bool()
    h, att = m(feats, mask)
    assert h.shape == (2, 4) and att.shape == (2, 5)
    assert torch.allclose(att.sum(1), torch.ones(2))
    assert (att[~mask] == 0).all()
    # hand computation for ROI 0 (Ilse et al. Eq. 9 and 7)
    hk = torch.relu(m.embed[0](feats[0, :2]))
    gate = torch.tanh(m.attn_v[0](hk)) * torch.sigmoid(m.attn_u[0](hk))
    a = torch.softmax(m.attn_w(gate).squeeze(-1), dim=0)
    assert torch.allclose(att[0, :2], a, atol=1e-6)
    assert torch.allclose(h[0], a @ hk, atol=1e-6)
    garbage = feats.clone()
    garbage[0, 2:] = float('nan')
    h2, att2 = m(garbage, mask)
    assert torch.allclose(h, h2) and torch.allclose(att, att2)


def test_ungated_variant():
    m = GatedAttentionMIL(in_channels=3, hidden_channels=2, gated=False)
    assert m.attn_u is None
    h, att = m(torch.randn(1, 3, 3), torch.ones(1, 3).bool())
    assert h.shape == (1, 2) and torch.allclose(att.sum(), torch.tensor(1.))
