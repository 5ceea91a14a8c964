"""`oci-lsp eval`: pass@1 on HumanEval and MBPP (and EvalPlus's versions) through the editor's
refinement loop, prompts and sandbox (issue 17)."""
