"""The model side: catalog, store (pull, convert, verify), and the generation backends."""
