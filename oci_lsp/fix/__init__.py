"""Headless batch fixes: `oci-lsp --fix`."""
