# CPU size of ./rnn_r50_sgd-90e_cervical-roi-1024.py (Table 1 baseline:
# RNN, last hidden state). Not a paper setting.
_base_ = ['./lstm_r18-w32_adamw-cpu_cervical-roi-512.py']
model = dict(global_branch=dict(cell='rnn'))
