"""Arabic text helpers: normalization with an offset map, and the string helpers every stage imports."""
