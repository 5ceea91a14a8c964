"""What `oci-lsp eval` tells: the summary table (percent) and the JSON report.

The JSON has the keys CONTRACT.md's CLI section gives `--json` (benchmark, model, backend,
quantization, device, feedback, problems, pass_at_1) and, as additions, what the run was made
with: the problem count, the data file, the chat template, the library versions, the paper's
figures and the time taken.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EvalReport:
    benchmark: str  # "humaneval", "humaneval+", "mbpp", "mbpp+"
    label: str  # "HumanEval+"
    model: str
    backend: str
    quantization: str | None
    device: str
    feedback: int  # refinement rounds after the first
    records: list[dict[str, Any]]  # the problems' records (state.py), in the benchmark's order
    data: str = ""
    template: str = ""
    versions: dict[str, str | None] = field(default_factory=dict)
    paper: tuple[float, ...] = ()  # the paper's percent per round, where known
    seconds: float = 0.0

    def pass_at_1(self) -> list[float]:
        """pass_at_1[k]: the fraction of the problems solved by round k (0 to 1)."""
        total = len(self.records)
        solved = [r.get("passed_round") for r in self.records]
        return [
            (sum(1 for s in solved if isinstance(s, int) and s <= k) / total) if total else 0.0
            for k in range(self.feedback + 1)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "backend": self.backend,
            "quantization": self.quantization,
            "device": self.device,
            "feedback": self.feedback,
            "problems": [
                {
                    "task_id": r["task_id"],
                    "passed_round": r.get("passed_round"),
                    "rounds": [
                        {"passed": bool(x.get("passed")), "feedback": x.get("feedback")}
                        for x in r.get("rounds", [])
                    ],
                }
                for r in self.records
            ],
            "pass_at_1": self.pass_at_1(),
            # Additions: what the figures were made with.
            "count": len(self.records),
            "data": self.data,
            "template": self.template,
            "versions": self.versions,
            "paper": list(self.paper) or None,
            "seconds": round(self.seconds, 1),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    def table(self) -> str:
        """The summary printed at the end: pass@1 per round, the paper's beside it, the gap."""
        where = self.backend + (f", {self.quantization}" if self.quantization else "")
        lines = [
            f"{self.label}: {_problems(len(self.records))}, {self.model} ({where} on"
            f" {self.device}), greedy, {self.feedback} round(s) of execution feedback"
        ]
        rows = [("round", "pass@1", "paper", "gap")]
        for k, fraction in enumerate(self.pass_at_1()):
            ours = 100 * fraction
            name = "0 (generated)" if k == 0 else f"{k} (after feedback {k})"
            if k < len(self.paper):
                figure = self.paper[k]
                rows.append((name, f"{ours:.1f}%", f"{figure:.1f}%", f"{ours - figure:+.1f}"))
            else:
                rows.append((name, f"{ours:.1f}%", "-", "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines += [
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        if not self.paper:
            lines.append("paper: no figure for this model and benchmark")
        lines.append(f"template: {self.template}")
        lines.append(
            "versions: "
            + ", ".join(f"{name} {version}" for name, version in self.versions.items() if version)
        )
        lines.append(f"data: {self.data}; {self.seconds:.1f} s")
        return "\n".join(lines)


def _problems(count: int) -> str:
    return f"{count} problem" + ("" if count == 1 else "s")
