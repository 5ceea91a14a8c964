"""oci-lsp: OpenCodeInterpreter's generate-execute-refine loop as a language server."""

__version__ = "0.1.0"
