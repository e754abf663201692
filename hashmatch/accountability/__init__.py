"""Accountability for what a platform does with a match (a workflow beside scan and
exchanges): the decision log (decisions.py: what was done, tied to the match evidence),
DSA statements of reasons (dsa_config.py: dsa.toml; statements.py; schema.py: the
Transparency Database's rules; enums.py: its values), their submission (submit.py) and
the transparency counts (report.py: 2024/2835 sheets 5 and 8, TCO Art. 7).

May import: base, signals, errors, config. Never a path, file name, hash value, token or
user id leaves this package: statements and reports are published."""
