"""`python -m secret_contract.controller`."""

import sys

from secret_contract.controller.main import main

sys.exit(main())
