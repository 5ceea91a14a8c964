"""The execution-feedback loop: prompts, code extraction, isolated verification, refinement."""
