"""Datasets shipped with secure_mnist, so that the tutorials run offline."""
