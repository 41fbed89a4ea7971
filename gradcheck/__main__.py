import sys

from gradcheck.book.cli import main

sys.exit(main())
