"""How igkit explains molecules unless told otherwise: the study behind it is in README.md
("Multi-fragment rules"). Kept apart from the network code so that ``igkit --help`` can
show them without importing torch."""

#: what is explained: the classification logit (the probability saturates, see the study)
SCORES = ("probability", "logit")
DEFAULT_SCORE = "logit"
#: the path's start: all-zero features (the paper's), the carbon skeleton (every atom a carbon,
#: every bond single), or both with attributions averaged
BASELINES = ("zero", "carbon", "zero+carbon")
DEFAULT_BASELINE = "zero+carbon"
#: the default of ``--max-atoms``: heavy atoms (hydrogens are implicit) a molecule may have. Drug-like
#: molecules have well under 70; large natural products (vancomycin 101, cyclosporin 85) fit too
DEFAULT_MAX_ATOMS = 150
