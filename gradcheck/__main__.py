import sys

from gradcheck.cli import main

sys.exit(main())
