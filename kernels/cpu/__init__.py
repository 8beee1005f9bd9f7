"""cpu kernels: same names, signatures and semantics as kernels/reference."""

__all__: list[str] = []
