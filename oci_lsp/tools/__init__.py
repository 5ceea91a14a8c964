"""The linters and type checkers (ruff, mypy, pyright) and Python's own compiler: what they
report on a module, as findings, and how a finding reads in a feedback turn. Knows nothing
of LSP or of the refinement loop."""
