"""The paper's pass@1 figures (OpenCodeInterpreter, arXiv 2402.14658, greedy), by catalog id.

Each row is (the model alone, after one round of execution feedback): the paper's "two
rounds at most". HumanEval and MBPP are EvalPlus's base tests; HumanEval+ and MBPP+ its plus
tests. Only the figures checked against the paper are here; a model or benchmark without one
shows none.
"""

from __future__ import annotations

from oci_lsp.engine.catalog import CATALOG, CatalogModel, find

PAPER: dict[str, dict[str, tuple[float, float]]] = {
    "ds-6.7b": {
        "humaneval": (76.2, 81.1),
        "humaneval+": (72.0, 78.7),
        "mbpp": (73.9, 82.7),
        "mbpp+": (63.7, 72.4),
    },
    "ds-33b": {"humaneval": (79.3, 82.9)},
}


def catalog_entry(model: str | None) -> CatalogModel | None:
    """The catalog model a name stands for: an id, a repository, or a repository's last part
    as a server may name it ("OpenCodeInterpreter-DS-6.7B")."""
    if not model:
        return None
    found = find(model)
    if found is not None:
        return found
    name = model.rstrip("/").rsplit("/", 1)[-1].lower()
    return next((m for m in CATALOG if m.repo.rsplit("/", 1)[-1].lower() == name), None)


def paper_figures(catalog_id: str | None, row: str | None) -> tuple[float, ...]:
    """The paper's percent for each round (round 0, after round 1), or () when unknown."""
    if catalog_id is None or row is None:
        return ()
    return PAPER.get(catalog_id, {}).get(row, ())
