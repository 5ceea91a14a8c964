from oci_lsp.cli import main

raise SystemExit(main())
