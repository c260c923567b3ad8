"""PySyft 0.2's sharing keywords (`protocol=`, `dtype=`, `field=`) and what they mean here.

PySyft let `share()` choose a protocol for comparisons ("snn": SecureNN's, "fss": function
secret sharing, as in AriaNN) and a ring ("long": Z_2^64, "int": Z_2^32). secure_mnist runs one
protocol family whatever is asked (SPDZ-style Beaver products and a binary-adder comparison,
both with correlated randomness from the crypto provider), in Z_2^64. The keywords are accepted
so that PySyft code runs unchanged, and checked, so that a typo or a setting with another
meaning is not silently ignored. See docs/coming-from-pysyft.md.
"""

from __future__ import annotations

RING_BITS = 64

#: PySyft's protocol names, and what secure_mnist runs instead.
PROTOCOLS = {
    "snn": "SecureNN's comparisons (three parties); here: a binary adder on XOR shares with the crypto provider's triples",
    "fss": "function secret sharing (AriaNN) for comparisons; here: the same binary-adder comparison",
}

#: PySyft's ring names: "long" is Z_2^64 as here; "int" (Z_2^32) also runs in Z_2^64, which holds
#: every value Z_2^32 could.
DTYPES = {"long": 64, "int": 32}


def check_sharing_keywords(protocol: str | None = None, dtype: str | None = None, field: int | None = None) -> None:
    """Accept PySyft's sharing keywords that secure_mnist can honour; refuse the others clearly."""
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(
            f"unknown protocol {protocol!r}: PySyft 0.2 knew {sorted(PROTOCOLS)}, and secure_mnist accepts both "
            "but always runs its own protocol (Beaver products and a binary-adder comparison with a crypto provider)"
        )
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(
            f"unsupported dtype {dtype!r}: secure_mnist computes in Z_2^64, PySyft's dtype='long' "
            "(dtype='int', PySyft's Z_2^32, is accepted and runs in Z_2^64 too)"
        )
    if field is not None and field != 2**RING_BITS:
        raise ValueError(f"unsupported field {field}: secure_mnist computes in Z_2^64 (field=2**64)")


#: Keywords PySyft's approximations took (iteration counts, a choice of method): accepted, and
#: ignored, because secure_mnist chooses each approximation and its iterations from the input
#: range and the precision, and states the resulting maximum error.
APPROXIMATION_OPTIONS = {
    "exp": {"iterations"},
    "log": {"iterations", "exp_iterations", "order"},
    "reciprocal": {"method", "nr_iters", "log_iters", "exp_iters", "all_pos"},
    "sigmoid": {"method"},
    "tanh": {"method"},
    "sqrt": set(),
}


def check_approximation_options(name: str, options: dict) -> None:
    """Refuse keywords PySyft's `name` did not take (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(options) - APPROXIMATION_OPTIONS[name])
    if unknown:
        raise TypeError(f"{name}() got unexpected keyword arguments {unknown}; give the input range instead "
                        f"(see secure_mnist.mpc.approximations)")
