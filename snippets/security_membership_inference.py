"""A loss-threshold membership inference attack on a small MNIST network.

docs/security.md includes the marked section. The model is trained on plaintext for speed, and it
is not the tutorial's (784 -> 128 -> 10, cross-entropy): the attack works on any model that fits
its training data, and an encrypted run of the same training computes the same model up to
rounding, so it leaks in the same way. Run this file to see the numbers.
"""

# --8<-- [start:attack]
import torch
import torch.nn.functional as F

from secure_mnist.data.mnist import load_mnist, normalized_images


def membership_attack(n=64, epochs=200, seed=0):
    """Train on n images until they are fitted; then guess 'member' when the loss is low."""
    train_images, train_labels = load_mnist(train=True)
    test_images, test_labels = load_mnist(train=False)
    members = normalized_images(train_images[:n]).view(n, -1), train_labels[:n]
    outsiders = normalized_images(test_images[:n]).view(n, -1), test_labels[:n]

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(epochs):
        sgd.zero_grad()
        F.cross_entropy(net(members[0]), members[1]).backward()
        sgd.step()

    with torch.no_grad():
        member_loss = F.cross_entropy(net(members[0]), members[1], reduction="none")
        outsider_loss = F.cross_entropy(net(outsiders[0]), outsiders[1], reduction="none")
    threshold = torch.cat([member_loss, outsider_loss]).median()  # the attacker's only parameter
    correct_guesses = (member_loss < threshold).sum() + (outsider_loss >= threshold).sum()
    return member_loss, outsider_loss, correct_guesses.item() / (2 * n)
# --8<-- [end:attack]


if __name__ == "__main__":
    member_loss, outsider_loss, accuracy = membership_attack()
    print(f"mean loss on members {member_loss.mean():.4f}, on outsiders {outsider_loss.mean():.4f}")
    print(f"the attack tells members from outsiders {accuracy:.0%} of the time (guessing: 50%)")
