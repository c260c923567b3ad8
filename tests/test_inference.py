"""Encrypted inference of a plaintext-trained CNN (secure_mnist.inference, `infer-cnn`), small.

The full measurement (1,000 test images, >= 99.5% agreement) is `python -m secure_mnist
infer-cnn`; here the same code on a few images, to keep CI short.
"""

from __future__ import annotations

import json

import pytest
import torch

from secure_mnist.__main__ import main
from secure_mnist.inference import SmallCNN, encrypted_inference, mnist_test_set, train_plaintext_cnn


@pytest.fixture(scope="module")
def model() -> SmallCNN:
    return train_plaintext_cnn(n_train_items=2000, epochs=1, seed=0)


def test_encrypted_predictions_agree_with_plaintext(model):
    images, labels = mnist_test_set(40)
    result = encrypted_inference(model, images, labels, batch_size=20)
    assert result.n_images == 40
    assert result.plaintext_correct >= 30  # the model did learn (about 90% after 2,000 images)
    assert result.agree >= 39, result  # >= 99.5% on 1,000 images with `infer-cnn`
    assert abs(result.encrypted_correct - result.plaintext_correct) <= 40 - result.agree
    assert result.bytes_sent > 0 and result.seconds > 0
    assert result.precision == "base 10, 3 fractional digits"


def test_the_model_owner_keeps_the_plaintext_model(model):
    before = [p.clone() for p in model.parameters()]
    encrypted_inference(model, *mnist_test_set(2), batch_size=2)
    assert all(type(p) is torch.nn.Parameter and torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_infer_cnn_command(capsys):
    assert main(["infer-cnn", "--n-train-items", "300", "--n-test-items", "6", "--batch-size", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_images"] == 6 and 0 <= report["agree"] <= 6
    assert report["ms_per_image"] == pytest.approx(1e3 * report["seconds"] / 6)
    assert main(["infer-cnn", "--n-train-items", "200", "--n-test-items", "2", "--base", "2",
                 "--precision-fractional", "16"]) == 0
    assert "predictions equal to plaintext: " in capsys.readouterr().out
