"""Schedule builders, one plain function per algorithm."""
