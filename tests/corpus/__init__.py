"""A corpus of real open-source projects from PyPI, for end-to-end tests and bench/.

projects.py pins them; workspace.py lays one out with its own venv; plain.py runs its suite
with plain pytest (the reference); mutations.py seeds faults in its functions.
"""
