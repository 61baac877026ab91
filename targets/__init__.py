"""Target descriptions: one TOML file per target, loaded by :mod:`edgec.target`."""
