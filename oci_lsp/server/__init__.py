"""The LSP layer: protocol in, calls to testing/ (and later refine/ and engine/) out."""
