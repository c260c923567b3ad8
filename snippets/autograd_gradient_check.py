"""Gradients on shares against torch.autograd on plaintext, for a tiny ReLU network.

docs/autograd.md includes the marked section. Run this file to repeat the check on 20 random
networks and print the largest difference found.
"""

# --8<-- [start:check]
import copy

import torch
import torch.nn.functional as F
from torch import nn

import secure_mnist as sm


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def gradients_both_ways(seed):
    """One model, batch and loss; gradients by torch.autograd and by AutogradTensors on shares."""
    torch.manual_seed(seed)
    plain_model = TinyNet()
    encrypted_model = copy.deepcopy(plain_model)
    inputs, targets = torch.randn(5, 4), torch.randn(5, 2)

    # Plaintext: torch.autograd.
    plain_loss = ((plain_model(inputs) - targets) ** 2).sum() / 5
    plain_loss.backward()

    # Encrypted: the same model, data and loss, on shares.
    session = sm.Session(seed=seed)
    sm.encrypt_parameters(encrypted_model, session)
    output = encrypted_model(sm.share_batch(inputs, session))
    encrypted_loss = ((output - sm.share_batch(targets, session)) ** 2).sum() / 5
    encrypted_loss.backward()

    gradients = {name: (param.grad.decrypt(), plain.grad)
                 for (name, param), plain in zip(encrypted_model.named_parameters(), plain_model.parameters())}
    return gradients, encrypted_loss.decrypt().item(), plain_loss.item()
# --8<-- [end:check]


if __name__ == "__main__":
    worst = 0.0
    for seed in range(20):
        gradients, encrypted_loss, plain_loss = gradients_both_ways(seed)
        worst = max([worst, *((ours - torch_s).abs().max().item() for ours, torch_s in gradients.values())])
    print(f"largest gradient difference over 20 networks: {worst:.2e} ({worst * 2**16:.1f} units of 2^-16)")
    assert worst < 2e-4
