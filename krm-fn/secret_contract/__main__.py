from secret_contract.cli import main

raise SystemExit(main())
