"""The crypto provider's side: correlated randomness dealt to the workers."""

from .dealer import beaver_triple, binary_triples, correlated_randomness, shared_random_bits

__all__ = ["beaver_triple", "binary_triples", "correlated_randomness", "shared_random_bits"]
