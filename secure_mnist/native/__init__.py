"""The compiled engine's kernels: small C files built with the machine's gcc (see build.py)."""
