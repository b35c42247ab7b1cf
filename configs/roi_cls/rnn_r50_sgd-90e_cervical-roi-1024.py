# Table 1 baseline (Shi et al.): a unidirectional (Elman, tanh) RNN over the
# pooled cell features, the last hidden state classified (no attention).
_base_ = ['./lstm_r50_sgd-90e_cervical-roi-1024.py']
model = dict(global_branch=dict(cell='rnn'))
